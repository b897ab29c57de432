//! What the identity services answer: an access token with its lifetime, or an error in
//! their words (never a token).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::Value;

use super::cache::AccessToken;
use crate::http_client::HttpClient;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends a token request and reads the answer.
pub async fn request_token(request: http::Request<Bytes>) -> Result<AccessToken, String> {
    let answer = HttpClient::system()
        .send(request, TIMEOUT)
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if answer.status != 200 {
        return Err(format!("HTTP {}: {}", answer.status, describe_error(&body)));
    }
    parse_token(&body)
}

/// Reads `access_token` and its lifetime from `expires_in`, or else `expires_on` (epoch
/// seconds), each a number or a numeric string as IMDS sends them.
fn parse_token(body: &Value) -> Result<AccessToken, String> {
    let value = body["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("the answer has no access_token")?
        .to_string();
    let number = |field: &str| match &body[field] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let lifetime = match (number("expires_in"), number("expires_on")) {
        (Some(seconds), _) => seconds,
        (None, Some(epoch)) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            epoch.saturating_sub(now)
        }
        (None, None) => return Err("the answer has neither expires_in nor expires_on".into()),
    };
    Ok(AccessToken {
        value,
        lifetime: Duration::from_secs(lifetime),
    })
}

/// The identity service's own words, never a token.
fn describe_error(body: &Value) -> String {
    let text = |field: &str| body[field].as_str().map(str::to_string);
    match (text("error"), text("error_description")) {
        (Some(error), Some(description)) => format!("{error}: {description}"),
        (Some(error), None) => error,
        _ => "no error description".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_lifetimes_as_numbers_or_strings() {
        let t = parse_token(&json!({"access_token": "x", "expires_in": "3599"})).unwrap();
        assert_eq!(t.lifetime, Duration::from_secs(3599));
        let t = parse_token(&json!({"access_token": "x", "expires_in": 60})).unwrap();
        assert_eq!(t.lifetime, Duration::from_secs(60));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let t = parse_token(&json!({"access_token": "x", "expires_on": (now + 120).to_string()}))
            .unwrap();
        assert!((118..=120).contains(&t.lifetime.as_secs()));
        assert!(parse_token(&json!({"expires_in": 1})).is_err());
    }
}
