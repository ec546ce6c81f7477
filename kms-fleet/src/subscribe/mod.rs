//! Subscribe: [`Subscriber`](subscriber::Subscriber) follows a store's stream and hands each
//! change to the [`apply`] logic that drops or reloads the cached key.

pub(crate) mod apply;
pub(crate) mod subscriber;
