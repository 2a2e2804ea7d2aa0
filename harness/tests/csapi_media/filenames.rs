//! TestMediaFilenames and TestMediaWithoutFileName (Complement: tests/media_filename_test.go,
//! media_nofilename_test.go; sytest "Can upload with ASCII/Unicode file name", "Can
//! download file '...'", "Can download specifying a different ... file name"): the name
//! given at upload, or in the download path, comes back in `Content-Disposition`;
//! without one there is no `filename`; safe types are `inline`, others `attachment`.

use glia_harness::Deployment;

use crate::{Api, MATRIX_PNG, disposition, download, mime, must_download, must_upload};

const UNICODE_NAME: &str = "\u{1F414}"; // a chicken, as in Complement

#[tokio::test]
async fn test_media_filenames() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;

    // Can download file '...' (ASCII, spaces, semicolons, and Unicode) with its name.
    for name in ["ascii", "name with spaces", "name;with;semicolons", UNICODE_NAME, "a\"quote'.png"]
    {
        let mxc = must_upload(&alice, MATRIX_PNG, Some(name), "image/png").await;
        let r = must_download(&alice, &mxc).await;
        assert_eq!(
            disposition(&r),
            ("inline".to_string(), Some(name.to_string())),
            "{name:?}: {:?}",
            r.header("content-disposition")
        );
        assert_eq!(r.body, MATRIX_PNG);
    }

    // Can download specifying a different (ASCII or Unicode) file name.
    let mxc = must_upload(&alice, MATRIX_PNG, Some("ascii"), "image/png").await;
    for alt in ["file.png", "\u{2615}", "with space.png"] {
        let r = download(&alice, &mxc, Api::Authed, Some(alt), "").await;
        assert_eq!(r.status, 200, "{}: {}", r.what, r.text());
        assert_eq!(
            disposition(&r).1.as_deref(),
            Some(alt),
            "{:?}",
            r.header("content-disposition")
        );
        assert_eq!(r.body, MATRIX_PNG);
    }
    let mxc = must_upload(&alice, MATRIX_PNG, Some(UNICODE_NAME), "image/png").await;
    let r = download(&alice, &mxc, Api::Authed, Some("\u{2615}"), "").await;
    assert_eq!(disposition(&r).1.as_deref(), Some("\u{2615}"));
    d.destroy().await;
}

/// TestMediaWithoutFileNameCSMediaV1: no `filename` at upload, none in the header; the
/// content type is kept (its mime type at least).
#[tokio::test]
async fn test_media_without_file_name() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let file = b"Hello World!";
    let mxc = must_upload(&alice, file, None, "text/plain").await;
    let r = must_download(&alice, &mxc).await;
    assert_eq!(r.body, file);
    assert_eq!(mime(&r), "text/plain");
    assert_eq!(disposition(&r), ("inline".to_string(), None));
    // An empty `filename` is no file name.
    let mxc = must_upload(&alice, file, Some(""), "text/plain").await;
    assert_eq!(disposition(&must_download(&alice, &mxc).await).1, None);
    d.destroy().await;
}

/// "Will serve safe media types as inline" / "unsafe media types as attachments"
/// (Complement runs these on Synapse): the spec's inline list decides, parameters and
/// case ignored.
#[tokio::test]
async fn test_inline_only_for_safe_types() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    for (bytes, ct, expected) in [
        (MATRIX_PNG, "image/png", "inline"),
        (MATRIX_PNG, "Text/Plain; charset=utf-8", "inline"),
        (&b"a,b"[..], "text/csv", "inline"),
        (&b"{}"[..], "application/json", "inline"),
        (&svg[..], "image/svg", "attachment"),
        (&svg[..], "image/svg+xml", "attachment"),
        (&b"<b>x</b>"[..], "text/html", "attachment"),
        (&b"alert(1)"[..], "application/javascript", "attachment"),
        (&b"%PDF-1.4"[..], "application/pdf", "attachment"),
        (&b"\0\0"[..], "application/octet-stream", "attachment"),
    ] {
        let mxc = must_upload(&alice, bytes, None, ct).await;
        let r = must_download(&alice, &mxc).await;
        assert_eq!(disposition(&r).0, expected, "{ct}: {:?}", r.header("content-disposition"));
        // The file name overriding the stored one does not change the disposition.
        let r = download(&alice, &mxc, Api::Authed, Some("x.html"), "").await;
        assert_eq!(disposition(&r).0, expected, "{ct} with a file name");
    }
    d.destroy().await;
}
