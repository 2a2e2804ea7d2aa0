//! Federation: the server's signing keys as other servers see them, and the `X-Matrix`
//! request signatures that authenticate server-to-server requests.

pub mod keys;
pub mod xmatrix;
