//! Who owns a kernel key and what it grants: the checks and permission changes of
//! [`KeyutilsAccess::Uid`](crate::KeyutilsAccess::Uid).

use linux_keyutils::{Key, KeyPermissions};

use super::key_error::{ForeignKey, to_keyring};
use super::walk;

/// The rights of a new key: view, read, write, search, link and setattr for the owning uid;
/// nothing for possessors, group or others.
pub(crate) const UID_ONLY: u32 = 0x003f_0000;

/// `perm` with the possessor's rights moved to the owning uid: what the owner could do while
/// possessing the key it may still do, other uids that possess it may do nothing more than
/// the group and others.
pub(crate) fn possessor_to_uid(perm: u32) -> u32 {
    let possessor = perm >> 24;
    let user = (perm >> 16) & 0xff;
    ((user | possessor) << 16) | (perm & 0xffff)
}

/// The uid whose rights the kernel applies to this process (its effective uid; the
/// filesystem uid follows it unless changed with `setfsuid`).
pub(crate) fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The owning uid and permission mask of `key`, whose description is `description`.
///
/// `KEYCTL_DESCRIBE` through `linux-keyutils` reads into a 512-byte buffer and panics on a
/// longer answer (`type;uid;gid;perm;description`), so a long description is looked up in
/// `/proc/keys` instead.
fn stat(key: Key, description: &str) -> keyring_core::Result<(u32, u32)> {
    // "user;" + two u32 + 8 hex digits + three ';' + NUL: at most 38 bytes besides the
    // description.
    if description.len() + 38 <= 512 {
        let meta = key.metadata().map_err(to_keyring)?;
        return Ok((meta.get_uid(), meta.get_perms().bits()));
    }
    let id = key.get_id().as_raw_id();
    walk::described()?
        .get(&id)
        .map(|d| (d.uid, d.perm))
        .ok_or(keyring_core::Error::NoEntry)
}

/// Fails unless this process's uid owns `key`; returns its permission mask.
pub(crate) fn check_owner(key: Key, description: &str) -> keyring_core::Result<u32> {
    let (owner, perm) = stat(key, description)?;
    let me = my_uid();
    if owner != me {
        return Err(keyring_core::Error::NoStorageAccess(Box::new(ForeignKey {
            owner,
            me,
        })));
    }
    Ok(perm)
}

/// Sets the permission mask of `key` (which this process's uid owns).
pub(crate) fn set_perm(key: Key, perm: u32) -> keyring_core::Result<()> {
    key.set_perms(KeyPermissions::from_u32(perm))
        .map_err(to_keyring)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn possessor_rights_move_to_the_uid() {
        // The kernel's default for a new key.
        assert_eq!(possessor_to_uid(0x3f01_0000), UID_ONLY);
        // Made read-only for the possessor by its owner: stays read-only.
        assert_eq!(possessor_to_uid(0x3b01_0000), 0x003b_0000);
        // Group and other rights are the owner's choice and stay.
        assert_eq!(possessor_to_uid(0x3f01_0101), 0x003f_0101);
        assert_eq!(possessor_to_uid(UID_ONLY), UID_ONLY);
    }
}
