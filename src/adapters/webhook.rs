//! Posting to a webhook: one JSON body, signed with HMAC-SHA256 when the target has a key (as
//! GitHub signs its webhooks: `X-Xone-Signature-256: sha256=<hex>`), within a deadline. What
//! goes wrong is told without the URL, whose path may hold a token, and without the answer's
//! body, which may echo it.

use std::sync::OnceLock;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use reqwest::blocking::Client;

/// `sha256=<hex of HMAC-SHA256(key, body)>`.
pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    let out = mac.finalize().into_bytes();
    let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// One client for the process (its connections and resolver shared), and one without the
/// platform's CA certificates for plain http where the machine has none.
fn client(url: &str) -> std::result::Result<&'static Client, String> {
    static CLIENT: OnceLock<std::result::Result<Client, String>> = OnceLock::new();
    static PLAIN: OnceLock<std::result::Result<Client, String>> = OnceLock::new();
    let builder = || {
        Client::builder()
            .user_agent(concat!("xone/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
    };
    let made = CLIENT.get_or_init(|| builder().build().map_err(|e| e.without_url().to_string()));
    match made {
        Ok(c) => Ok(c),
        Err(_) if url.starts_with("http:") => PLAIN
            .get_or_init(|| {
                builder()
                    .tls_certs_only(Vec::new())
                    .build()
                    .map_err(|e| e.without_url().to_string())
            })
            .as_ref()
            .map_err(|e| format!("cannot start the HTTP client: {e}")),
        Err(e) => Err(format!("cannot start the HTTP client: {e}")),
    }
}

/// Posts `body` to `url` with `headers`, waiting at most `timeout` in all (connecting
/// included); an answer outside 2xx, or none, is the error, said without the URL.
pub fn post(
    url: &str,
    body: Vec<u8>,
    headers: &[(&'static str, String)],
    timeout: Duration,
) -> std::result::Result<(), String> {
    let mut req = client(url)?
        .post(url)
        .timeout(timeout)
        .header("Content-Type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let answer = req.send().map_err(|e| {
        let e = e.without_url();
        if e.is_timeout() {
            format!("no answer within {:.1}s", timeout.as_secs_f64())
        } else if e.is_connect() {
            "could not be reached".to_string()
        } else {
            e.to_string()
        }
    })?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

/// Whether the host of `url` takes a connection within `timeout`: nothing is posted (a test
/// event is `xone notify test`'s to send).
pub fn reachable(url: &str, timeout: Duration) -> std::result::Result<(), String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let (tls, rest) = match url.split_once("://") {
        Some(("https", r)) => (true, r),
        Some((_, r)) => (false, r),
        None => return Err("not a URL".into()),
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    let with_port = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        host.to_string()
    } else {
        format!("{host}:{}", if tls { 443 } else { 80 })
    };
    let addrs =
        with_port.to_socket_addrs().map_err(|_| "its host name does not resolve".to_string())?;
    for a in addrs {
        if TcpStream::connect_timeout(&a, timeout).is_ok() {
            return Ok(());
        }
    }
    Err("could not be reached".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_are_hmac_sha256_as_github_makes_them() {
        // GitHub's documented example: secret "It's a Secret to Everybody", payload
        // "Hello, World!".
        assert_eq!(
            super::sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
