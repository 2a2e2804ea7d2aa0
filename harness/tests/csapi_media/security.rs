//! Serving what users upload without handing browsers a way to run it, and media IDs,
//! server names and file names that try to leave the media store (the spec's content
//! repository security considerations).

use glia_harness::Deployment;

use crate::{
    Api, CSP_SANDBOX, disposition, download, download_raw, mime, must_download, must_upload, send,
    split_mxc, upload,
};

/// HTML uploaded as `text/html` is served as an attachment, with a sandboxing
/// Content-Security-Policy and (Glia) `X-Content-Type-Options: nosniff`.
#[tokio::test]
async fn test_html_is_served_as_an_attachment() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let html =
        b"<html><body><script>fetch('/_matrix/client/v3/account/whoami')</script></body></html>";
    let mxc = must_upload(&alice, html, Some("page.html"), "text/html").await;
    let r = must_download(&alice, &mxc).await;
    assert_eq!(r.body, html);
    assert_eq!(mime(&r), "text/html", "the type is kept (the spec: 'exactly the same')");
    assert_eq!(disposition(&r), ("attachment".into(), Some("page.html".into())));
    let csp =
        r.header("content-security-policy").unwrap_or_else(|| panic!("no CSP: {:?}", r.headers));
    for directive in [CSP_SANDBOX, "default-src 'none'", "script-src 'none'"] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    // Synapse does not send nosniff; the brief and good practice want it on Glia.
    if !d.is_external() {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("cross-origin-resource-policy"), Some("cross-origin"));
        assert_eq!(
            csp,
            "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; \
             style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"
        );
    }
    // Glia's thumbnails carry the same headers (Synapse sends its CSP on downloads only).
    let png = must_upload(&alice, crate::MATRIX_PNG, None, "image/png").await;
    let t = crate::thumbnail(&alice, &png, Api::Authed, "?width=32&height=32&method=crop").await;
    assert_eq!(t.status, 200, "{}", t.text());
    if !d.is_external() {
        assert!(t.header("content-security-policy").is_some_and(|c| c.contains(CSP_SANDBOX)));
        assert_eq!(t.header("x-content-type-options"), Some("nosniff"));
    }
    d.destroy().await;
}

/// A file name cannot inject headers: CR/LF and quotes come back encoded inside the one
/// Content-Disposition header, and decode to the name that was given.
#[tokio::test]
async fn test_filename_header_injection() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let name = "evil\r\nSet-Cookie: owned=1\r\nX-Injected: \"yes\"";
    let mxc = must_upload(&alice, b"x", Some(name), "text/plain").await;
    let r = must_download(&alice, &mxc).await;
    assert!(
        r.header("x-injected").is_none() && r.header("set-cookie").is_none(),
        "{:?}",
        r.headers
    );
    assert_eq!(r.headers.get_all("content-disposition").iter().count(), 1);
    assert_eq!(disposition(&r).1.as_deref(), Some(name));
    d.destroy().await;
}

/// Media IDs that try to walk out of the store are refused (404: no such media) on every
/// endpoint; a file name full of `../` is only a name, echoed back, never a path.
#[tokio::test]
async fn test_path_traversal_in_media_ids() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mxc = must_upload(&alice, b"innocent", None, "text/plain").await;
    let (server, _) = split_mxc(&mxc);
    // Each is one path segment (slashes percent-encoded), so URL normalisation keeps it
    // (a bare `..` cannot be sent: the client's URL parser resolves it away).
    for bad in [
        "../../../../etc/passwd",
        "...",
        "..%2F..%2Fetc%2Fpasswd",
        "..\\..\\windows\\win.ini",
        "a/../../homeserver.db",
        "%00",
        "content",
        "tmp",
    ] {
        for api in [Api::Authed, Api::Legacy] {
            let r = download_raw(&alice, &server, bad, api, None, "").await;
            assert_eq!(r.status, 404, "{}: {}", r.what, r.text());
            assert!(!r.text().contains("root:"), "{}", r.what);
        }
        let path = format!(
            "/_matrix/client/v1/media/thumbnail/{server}/{}?width=32&height=32",
            glia_harness::client::encode_segment(bad)
        );
        let r = send(&alice, "GET", &path, None, None, true).await;
        assert_eq!(r.status, 404, "{}: {}", r.what, r.text());
        let path = format!(
            "/_matrix/media/v3/upload/{server}/{}",
            glia_harness::client::encode_segment(bad)
        );
        let r =
            send(&alice, "PUT", &path, Some(b"x".to_vec().into()), Some("text/plain"), true).await;
        assert_eq!(r.status, 404, "{}: {}", r.what, r.text());
    }
    // A traversal-shaped file name: stored as a name, served back as one.
    let name = "../../../../etc/passwd";
    let mxc = must_upload(&alice, b"just data", Some(name), "text/plain").await;
    let r = must_download(&alice, &mxc).await;
    assert_eq!(r.body, b"just data");
    assert_eq!(disposition(&r).1.as_deref(), Some(name));
    let r = download(&alice, &mxc, Api::Authed, Some("../../../homeserver.yaml"), "").await;
    assert_eq!(r.body, b"just data");
    d.destroy().await;
}

/// Server names that are not server names are refused before anything is looked up.
/// The spec requires sanitising them without naming the error: Glia answers 400
/// `M_INVALID_PARAM`; Synapse raises an unhandled ValueError (500) for most, and takes
/// `...` and `a..b` for remote servers it tries to reach (bounded here by `timeout_ms`),
/// so on Synapse only "not served" is checked.
#[tokio::test]
async fn test_path_traversal_in_server_names() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mxc = must_upload(&alice, b"innocent", None, "text/plain").await;
    let (_, id) = split_mxc(&mxc);
    // (A bare `..` segment cannot be sent: the client's URL parser resolves it away.)
    for bad in ["../../etc", "...", "a..b", "a/b", "host name", "[::1", "localhost/../../"] {
        for api in [Api::Authed, Api::Legacy] {
            let r = download_raw(&alice, bad, &id, api, None, "?timeout_ms=1000").await;
            assert_ne!(r.status, 200, "{}", r.what);
            assert_ne!(r.body, b"innocent", "{}", r.what);
            if !d.is_external() {
                r.must_error(400, "M_INVALID_PARAM");
            }
        }
    }
    // A well-formed remote server name is fetched over federation; this one cannot be
    // reached, which is 502 (as Synapse answers).
    if !d.is_external() {
        let r = download_raw(&alice, "remote.example.org", &id, Api::Authed, None, "").await;
        r.must_error(502, "M_UNKNOWN");
    }
    // Uploading still works after all of the above.
    upload(&alice, b"still fine", None, Some("text/plain")).await.must_status(200);
    d.destroy().await;
}
