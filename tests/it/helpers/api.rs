//! The officers' API over HTTP, as a client of it.

use serde_json::{json, Value};

use super::*;

pub fn http_client() -> reqwest::Client {
    hotline::webhook::client().unwrap()
}

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(gw: &Gateway) -> Api {
        Api::at(gw.http)
    }

    /// The API of the gateway whose HTTP listener is `http`.
    pub fn at(http: std::net::SocketAddr) -> Api {
        Api {
            base: format!("http://{http}/api/v1"),
            http: http_client(),
        }
    }

    /// `GET path` with `token`: the body as text (CSV, HTML).
    pub async fn text(&self, path: &str, token: &str) -> String {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A GET's status, content type and body as bytes (a BOM kept).
    pub async fn bytes(&self, path: &str, token: &str) -> (u16, String, Vec<u8>) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let kind = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (r.status().as_u16(), kind, r.bytes().await.unwrap().to_vec())
    }

    /// Gives `members` the PIN 112233 on `store` and logs each in: their
    /// tokens, in order.
    pub async fn logged_in(
        &self,
        store: &hotline::tickets::Store,
        members: &[&str],
    ) -> Vec<String> {
        let mut tokens = Vec::new();
        for m in members {
            hotline::api::auth::set_pin(store, m, "112233")
                .await
                .unwrap();
            tokens.push(self.login(m, "112233").await);
        }
        tokens
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `POST /tickets/{n}/{action}` as `token`.
    pub async fn act(&self, n: &str, action: &str, token: &str, body: Value) -> (u16, Value) {
        let path = format!("/tickets/{n}/{action}");
        self.call("POST", &path, Some(token), Some(body)).await
    }

    pub async fn login(&self, member: &str, pin: &str) -> String {
        let (s, b) = self
            .call(
                "POST",
                "/login",
                None,
                Some(json!({"member": member, "pin": pin})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        b["token"].as_str().unwrap().to_string()
    }
}
