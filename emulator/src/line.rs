//! Enough of the LINE Messaging API "Get follower IDs" endpoint for the bulk
//! tools: `GET /v2/bot/followers/ids?limit=N&start=CURSOR` with
//! `Authorization: Bearer <channel access token>`, pages of at most 1000 IDs,
//! `next` while more remain, and an optional 429 every Nth request.
//!
//! Like LINE's, the `next` cursor is opaque and holds `/`, `+` and `=`, so a
//! client that does not percent-encode `start` gets 400 instead of a silent pass.

use std::collections::HashMap;

use hyper::StatusCode;
use serde::Deserialize;

const DEFAULT_LIMIT: usize = 300;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Default)]
pub(crate) struct LineApi {
    /// channel access token → follower IDs in order
    followers: HashMap<String, Vec<String>>,
    /// Answer 429 to every Nth follower request (0 = never).
    rate_limit_every: u32,
    /// `Retry-After` seconds sent with those 429s (LINE itself sends none).
    retry_after: Option<u32>,
    requests: u32,
}

/// Body of `PUT /admin/line/followers`.
#[derive(Debug, Deserialize)]
pub(crate) struct FollowersSetup {
    pub(crate) channel_token: String,
    pub(crate) user_ids: Vec<String>,
    #[serde(default)]
    pub(crate) rate_limit_every: u32,
    #[serde(default)]
    pub(crate) retry_after: Option<u32>,
}

fn cursor(offset: usize) -> String {
    format!("c/{offset}+=")
}

fn parse_cursor(s: &str) -> Option<usize> {
    s.strip_prefix("c/")?.strip_suffix("+=")?.parse().ok()
}

impl LineApi {
    pub(crate) fn set(&mut self, setup: FollowersSetup) {
        self.followers.insert(setup.channel_token, setup.user_ids);
        self.rate_limit_every = setup.rate_limit_every;
        self.retry_after = setup.retry_after;
    }

    pub(crate) fn set_retry_after(&mut self, secs: Option<u32>) {
        self.retry_after = secs;
    }

    /// Answers one follower-IDs request: (status, JSON body, `Retry-After` seconds).
    pub(crate) fn followers(
        &mut self,
        authorization: Option<&str>,
        query: Option<&str>,
    ) -> (StatusCode, serde_json::Value, Option<u32>) {
        let (status, body) = self.page(authorization, query);
        let retry_after = if status == StatusCode::TOO_MANY_REQUESTS {
            self.retry_after
        } else {
            None
        };
        (status, body, retry_after)
    }

    fn page(
        &mut self,
        authorization: Option<&str>,
        query: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let message = |m: &str| serde_json::json!({ "message": m });
        self.requests += 1;
        if self.rate_limit_every > 0 && self.requests.is_multiple_of(self.rate_limit_every) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                message("The API rate limit has been exceeded. Try again later."),
            );
        }
        let Some(ids) = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .and_then(|t| self.followers.get(t))
        else {
            return (StatusCode::UNAUTHORIZED, message("Authentication failed. Confirm that the access token in the authorization header is valid."));
        };
        let mut limit = DEFAULT_LIMIT;
        let mut start = 0usize;
        for (key, value) in crate::http::query_pairs(query) {
            match key.as_str() {
                "limit" => match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                    _ => {
                        return (
                            StatusCode::BAD_REQUEST,
                            message("The value for the 'limit' parameter is invalid"),
                        )
                    }
                },
                "start" => match parse_cursor(&value) {
                    Some(n) if n <= ids.len() => start = n,
                    _ => {
                        return (
                            StatusCode::BAD_REQUEST,
                            message("The value for the 'start' parameter is invalid"),
                        )
                    }
                },
                _ => {}
            }
        }
        let end = (start + limit).min(ids.len());
        let mut body = serde_json::json!({ "userIds": &ids[start..end] });
        if end < ids.len() {
            body["next"] = cursor(end).into();
        }
        (StatusCode::OK, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_next_and_rate_limit_every_nth() {
        let mut api = LineApi::default();
        let ids: Vec<String> = (0..2500).map(|i| format!("U{i:032x}")).collect();
        api.set(FollowersSetup {
            channel_token: "t".into(),
            user_ids: ids.clone(),
            rate_limit_every: 0,
            retry_after: None,
        });
        let mut got = Vec::new();
        let mut query = "limit=1000".to_owned();
        loop {
            let (status, body, _) = api.followers(Some("Bearer t"), Some(&query));
            assert_eq!(status, StatusCode::OK);
            got.extend(
                body["userIds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned()),
            );
            match body["next"].as_str() {
                Some(next) => {
                    // Sent as is, `+` reads as a space: the cursor must be encoded.
                    let raw = api.followers(Some("Bearer t"), Some(&format!("start={next}")));
                    assert_eq!(raw.0, StatusCode::BAD_REQUEST);
                    let encoded = next
                        .replace('/', "%2F")
                        .replace('+', "%2B")
                        .replace('=', "%3D");
                    query = format!("limit=1000&start={encoded}");
                }
                None => break,
            }
        }
        assert_eq!(got, ids);
        assert_eq!(
            api.followers(Some("Bearer other"), None).0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            api.followers(Some("Bearer t"), Some("limit=1001")).0,
            StatusCode::BAD_REQUEST
        );
        api.set(FollowersSetup {
            channel_token: "t".into(),
            user_ids: ids,
            rate_limit_every: 2,
            retry_after: Some(3),
        });
        let answers: Vec<(u16, Option<u32>)> = (0..4)
            .map(|_| {
                let (status, _, retry_after) = api.followers(Some("Bearer t"), None);
                (status.as_u16(), retry_after)
            })
            .collect();
        assert!(
            answers.contains(&(429, Some(3))) && answers.contains(&(200, None)),
            "{answers:?}"
        );
    }
}
