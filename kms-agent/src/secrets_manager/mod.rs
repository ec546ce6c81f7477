//! The AWS Secrets Manager Agent's API: `GET /secretsmanager/get?secretId=…` and
//! `GET <path_prefix><secretId>`, answered with Secrets Manager's `GetSecretValue` JSON and
//! its errors, from whichever store the configuration names.

pub mod arn;
mod error;
mod error_map;
mod fetch;
mod output;
pub mod query;

use http::{Response, StatusCode, Uri};

pub use error::SmError;
pub use fetch::{resolve, warm};
pub use output::created_date;

use crate::respond::{self, Body};
use crate::route::Route;
use crate::snapshot::Snapshot;

/// Answers an AWS-compatible request.
pub async fn handle(snap: &Snapshot, route: Route, uri: &Uri) -> Response<Body> {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let parsed = match route {
        Route::SecretsManagerPath => {
            query::GetQuery::from_path(path_and_query, &snap.secrets_manager.path_prefix)
        }
        _ => query::GetQuery::from_query(path_and_query),
    };
    let q = match parsed {
        Ok(q) => q,
        Err(e) => return SmError::Request(e.0).response(),
    };
    match fetch::fetch(snap, &q).await {
        Ok(body) => respond::json_bytes(StatusCode::OK, body),
        Err(e) => {
            tracing::debug!(status = e.status(), "secretsmanager request failed");
            e.response()
        }
    }
}
