//! `GET /tickets/{number}/recording`: the call's WAV with HTTP Range (one
//! range), every download on the ticket's timeline.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::tickets::visible;
use super::{ApiError, Officer, Shared};
use crate::tickets::actions;

/// The call's recording, with HTTP Range (one range); every download is
/// written to the timeline.
async fn recording(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let t = visible(&s, &o, &n).await?;
    let Some(link) = t
        .register
        .recordings
        .iter()
        .rev()
        .find(|r| r.duration_ms > 0)
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this ticket has no recording",
        ));
    };
    let bytes = tokio::fs::read(&link.path).await.map_err(|e| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("recording unavailable: {}", e.kind()),
        )
    })?;
    let len = bytes.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    let asked = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    s.store
        .act(&n, &actions::download(&o.member.id, asked))
        .await?;
    let common = [
        (header::CONTENT_TYPE, HeaderValue::from_static("audio/wav")),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
    ];
    match range {
        None => Ok((StatusCode::OK, common, bytes).into_response()),
        Some(Some((a, b))) => {
            // `parse_range` keeps `a <= b < len`; `get` says so again.
            let part = bytes
                .get(a as usize..=b as usize)
                .unwrap_or_default()
                .to_vec();
            let mut r = (StatusCode::PARTIAL_CONTENT, common, part).into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                content_range(format!("{a}-{b}/{len}"))?,
            );
            Ok(r)
        }
        Some(None) => {
            let mut r = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "bad_range",
                "range not satisfiable",
            )
            .into_response();
            r.headers_mut()
                .insert(header::CONTENT_RANGE, content_range(format!("*/{len}"))?);
            Ok(r)
        }
    }
}

/// `Content-Range: bytes <spec>` (digits, `-`, `*`, `/`: always a valid
/// header value; an error here would be ours, and says so).
fn content_range(spec: String) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!("bytes {spec}")).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("Content-Range: {e}"),
        )
    })
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` within `len` (one range).
fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let spec = v.strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len - 1)
        }
        (a, "") => (a.parse().ok()?, len - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(len - 1)),
    };
    (a <= b && a < len).then_some((a, b))
}

pub(super) fn router() -> Router<Shared> {
    Router::new().route("/tickets/{number}/recording", get(recording))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some((990, 999)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-1", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
    }
}
