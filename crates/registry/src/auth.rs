//! The registry auth handshake: parse `WWW-Authenticate`, get a bearer token from the realm.

use std::collections::HashMap;

use serde::Deserialize;
use tracing::debug;

use crate::credentials::Secret;
use crate::error::{Error, Result};

/// The OAuth2 client id we present, as containerd presents "containerd-client".
const CLIENT_ID: &str = "longshore";

/// One parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm="..."`.
    Basic,
    /// `Bearer realm="...",service="...",scope="..."`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` value; may hold several challenges. Unknown schemes are skipped.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        let scheme_end = rest
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(rest.len());
        let scheme = rest[..scheme_end].to_ascii_lowercase();
        rest = rest[scheme_end..].trim_start_matches([' ', ',']);
        let (params, remaining) = parse_params(rest);
        rest = remaining;
        match scheme.as_str() {
            "basic" => out.push(Challenge::Basic),
            "bearer" => {
                if let Some(realm) = params.get("realm") {
                    out.push(Challenge::Bearer {
                        realm: realm.clone(),
                        service: params.get("service").cloned(),
                        scope: params.get("scope").cloned(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// Parse `k=v, k="v"` pairs until a token without `=` (the next challenge's scheme).
fn parse_params(mut s: &str) -> (HashMap<String, String>, &str) {
    let mut params = HashMap::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        let Some(eq) = s.find('=') else {
            return (params, s);
        };
        let key = &s[..eq];
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == ',') {
            return (params, s);
        }
        let key = key.to_ascii_lowercase();
        let after = &s[eq + 1..];
        let (value, rest) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        s = rest;
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
}

/// Ask the token server `realm` for a token for `scope`.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scope: &str,
    secret: Option<&Secret>,
) -> Result<String> {
    debug!(realm, ?service, scope, "fetching registry token");
    let request = match secret {
        Some(Secret::IdentityToken { token, .. }) => {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("client_id", CLIENT_ID),
                ("scope", scope),
            ];
            if let Some(s) = service {
                form.push(("service", s));
            }
            http.post(realm).form(&form)
        }
        other => {
            let mut query = vec![("scope", scope)];
            if let Some(s) = service {
                query.push(("service", s));
            }
            let req = http.get(realm).query(&query);
            match other {
                Some(Secret::Basic { username, password }) => {
                    req.basic_auth(username, Some(password))
                }
                _ => req,
            }
        }
    };
    let response = request.send().await.map_err(|source| Error::Network {
        url: realm.to_string(),
        source,
    })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|source| Error::Network {
        url: realm.to_string(),
        source,
    })?;
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Error::Unauthorized {
            url: realm.to_string(),
            detail: format!(
                "token server refused: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
        });
    }
    if !status.is_success() {
        return Err(Error::Status {
            url: realm.to_string(),
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        });
    }
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid(format!("token from {realm}"), e.to_string()))?;
    let token = if parsed.token.is_empty() {
        parsed.access_token
    } else {
        parsed.token
    };
    if token.is_empty() {
        return Err(Error::invalid(
            format!("token from {realm}"),
            "no token in response",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="longshore-basic""#),
            vec![Challenge::Basic]
        );
        let both = parse_challenges(r#"Basic realm="x", Bearer realm="http://a/t", service=s"#);
        assert_eq!(both.len(), 2);
        assert!(matches!(&both[1], Challenge::Bearer { service: Some(s), .. } if s == "s"));
        assert!(parse_challenges("Negotiate").is_empty());
        assert_eq!(
            parse_challenges(r#"Bearer realm="a\"b""#),
            vec![Challenge::Bearer {
                realm: "a\"b".into(),
                service: None,
                scope: None
            }]
        );
    }
}
