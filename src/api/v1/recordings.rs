//! `GET /tickets/{number}/recording`: the call's WAV with HTTP Range (one
//! range), streamed from the file (a range is read from where it starts,
//! never the whole file), every download on the ticket's timeline.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

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
    let unavailable = |e: std::io::Error| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("recording unavailable: {}", e.kind()),
        )
    };
    let mut file = tokio::fs::File::open(&link.path)
        .await
        .map_err(unavailable)?;
    let len = file.metadata().await.map_err(unavailable)?.len();
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
        None => {
            let mut r = (StatusCode::OK, common, streamed(file, len)).into_response();
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            Ok(r)
        }
        Some(Some((a, b))) => {
            // `parse_range` keeps `a <= b < len`: the range is read from
            // the file as it is sent, never the whole file.
            file.seek(std::io::SeekFrom::Start(a))
                .await
                .map_err(unavailable)?;
            let mut r = (
                StatusCode::PARTIAL_CONTENT,
                common,
                streamed(file, b - a + 1),
            )
                .into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(b - a + 1));
            h.insert(
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

/// Bytes read from a file per chunk of a download.
const CHUNK: usize = 64 * 1024;

/// `count` bytes of `file` from where it stands, read chunk by chunk as
/// the body is sent (a read error ends the body: the client sees it cut).
fn streamed(file: tokio::fs::File, count: u64) -> axum::body::Body {
    let chunks = futures::stream::unfold(Some(file.take(count)), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(axum::body::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    axum::body::Body::from_stream(chunks)
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
    use super::{parse_range, streamed};

    /// A range of a file larger than a chunk: the body is those bytes, read
    /// from the range's start.
    #[tokio::test]
    async fn a_range_is_streamed_from_where_it_starts() {
        use tokio::io::AsyncSeekExt as _;
        let dir = std::env::temp_dir().join(format!("hotline-range-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.wav");
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let (a, b) = parse_range("bytes=70000-200001", content.len() as u64).unwrap();
        let mut file = tokio::fs::File::open(&path).await.unwrap();
        file.seek(std::io::SeekFrom::Start(a)).await.unwrap();
        let body = axum::body::to_bytes(streamed(file, b - a + 1), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body.len(), 130_002);
        assert_eq!(&body[..], &content[70_000..=200_001]);
        std::fs::remove_dir_all(dir).unwrap();
    }

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
