//! The one error type: every failure a request can meet maps to an HTTP status and a Matrix
//! `errcode`, so handlers return `Result<_, Error>` and never build error bodies themselves.

use http::StatusCode;
use serde_json::{Value, json};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnknownToken(String),
    #[error("{0}")]
    MissingToken(String),
    #[error("{0}")]
    BadJson(String),
    #[error("{0}")]
    NotJson(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unrecognized(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 400 `M_UNRECOGNIZED`: a known endpoint whose path makes no sense (push rule paths,
    /// as Synapse's `UnrecognizedRequestError`).
    #[error("{0}")]
    BadPath(String),
    #[error("{0}")]
    TooLarge(String),
    /// Data the server manages itself (405 `M_BAD_JSON`, e.g. `m.push_rules` account data).
    #[error("{0}")]
    ServerControlled(String),
    #[error("{0}")]
    InvalidUsername(String),
    #[error("{0}")]
    UserInUse(String),
    #[error("{0}")]
    InvalidParam(String),
    #[error("{0}")]
    MissingParam(String),
    #[error("{0}")]
    Unknown(String),
    #[error("{0}")]
    UserDeactivated(String),
    #[error("{0}")]
    WeakPassword(String),
    /// A password `password_config.policy` refuses (400), with Synapse's errcode for the
    /// rule it breaks (`M_PASSWORD_TOO_SHORT`, `M_PASSWORD_NO_DIGIT`, ...).
    #[error("{0}")]
    PasswordRefused(String, &'static str),
    #[error("{0}")]
    GuestAccessForbidden(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    UnsupportedRoomVersion(String),
    /// 400: a joining server does not support the room's version.
    #[error("{0}")]
    IncompatibleRoomVersion(String),
    #[error("{0}")]
    RoomInUse(String),
    /// 409 `M_UNKNOWN`: the resource exists already (room aliases).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadAlias(String),
    #[error("{0}")]
    LimitExceeded(String, u64),
    /// Media created with `/create` whose upload has not arrived (504 `M_NOT_YET_UPLOADED`).
    #[error("{0}")]
    NotYetUploaded(String),
    /// An upload to a media ID that has content already (409 `M_CANNOT_OVERWRITE_MEDIA`).
    #[error("{0}")]
    CannotOverwriteMedia(String),
    /// A signature on uploaded key material does not verify (400 `M_INVALID_SIGNATURE`).
    #[error("{0}")]
    InvalidSignature(String),
    /// A key backup request named a version that is not the current one (403); the body
    /// carries `current_version`.
    #[error("Wrong backup version.")]
    WrongRoomKeysVersion { current_version: String },
    /// User-interactive authentication must continue: the body is the UIA state object.
    #[error("user-interactive authentication required")]
    Uia(Value),
    /// 502 `M_UNKNOWN`: something the server fetched for the request failed (URL previews).
    #[error("{0}")]
    BadGateway(String),
    /// 502 `M_TOO_LARGE`: something the server fetched was too large (URL previews).
    #[error("{0}")]
    UpstreamTooLarge(String),
    /// 400 `M_EXCLUSIVE`: a user ID or alias an application service reserved.
    #[error("{0}")]
    Exclusive(String),
    /// A request the server made for the client failed (the appservice ping): its status,
    /// errcode and extra fields (`status`, `body`) are passed on.
    #[error("{msg}")]
    Upstream { status: StatusCode, errcode: &'static str, msg: String, extra: Value },
    /// A failure inside the server; the cause is logged, never sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> StatusCode {
        use Error::*;
        match self {
            Forbidden(_) | UserDeactivated(_) | GuestAccessForbidden(_) => StatusCode::FORBIDDEN,
            UnknownToken(_) | MissingToken(_) | Uia(_) | Unauthorized(_) => {
                StatusCode::UNAUTHORIZED
            }
            BadJson(_)
            | NotJson(_)
            | InvalidUsername(_)
            | UserInUse(_)
            | InvalidParam(_)
            | MissingParam(_)
            | Unknown(_)
            | WeakPassword(_)
            | PasswordRefused(..)
            | UnsupportedRoomVersion(_)
            | IncompatibleRoomVersion(_)
            | RoomInUse(_)
            | BadAlias(_)
            | Exclusive(_)
            | BadPath(_) => StatusCode::BAD_REQUEST,
            Upstream { status, .. } => *status,
            Conflict(_) | CannotOverwriteMedia(_) => StatusCode::CONFLICT,
            NotYetUploaded(_) => StatusCode::GATEWAY_TIMEOUT,
            NotFound(_) | Unrecognized(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed(_) | ServerControlled(_) => StatusCode::METHOD_NOT_ALLOWED,
            TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            LimitExceeded(..) => StatusCode::TOO_MANY_REQUESTS,
            InvalidSignature(_) => StatusCode::BAD_REQUEST,
            WrongRoomKeysVersion { .. } => StatusCode::FORBIDDEN,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            BadGateway(_) | UpstreamTooLarge(_) => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn errcode(&self) -> &'static str {
        use Error::*;
        match self {
            Forbidden(_) | Uia(_) => "M_FORBIDDEN",
            UnknownToken(_) => "M_UNKNOWN_TOKEN",
            MissingToken(_) => "M_MISSING_TOKEN",
            BadJson(_) | ServerControlled(_) => "M_BAD_JSON",
            NotJson(_) => "M_NOT_JSON",
            NotFound(_) => "M_NOT_FOUND",
            Unrecognized(_) | MethodNotAllowed(_) | BadPath(_) => "M_UNRECOGNIZED",
            TooLarge(_) | UpstreamTooLarge(_) => "M_TOO_LARGE",
            InvalidUsername(_) => "M_INVALID_USERNAME",
            UserInUse(_) => "M_USER_IN_USE",
            InvalidParam(_) => "M_INVALID_PARAM",
            MissingParam(_) => "M_MISSING_PARAM",
            Unknown(_) | Internal(_) | Conflict(_) | BadGateway(_) => "M_UNKNOWN",
            BadAlias(_) => "M_BAD_ALIAS",
            UserDeactivated(_) => "M_USER_DEACTIVATED",
            WeakPassword(_) => "M_WEAK_PASSWORD",
            PasswordRefused(_, code) => code,
            GuestAccessForbidden(_) => "M_GUEST_ACCESS_FORBIDDEN",
            Unauthorized(_) => "M_UNAUTHORIZED",
            LimitExceeded(..) => "M_LIMIT_EXCEEDED",
            InvalidSignature(_) => "M_INVALID_SIGNATURE",
            NotYetUploaded(_) => "M_NOT_YET_UPLOADED",
            CannotOverwriteMedia(_) => "M_CANNOT_OVERWRITE_MEDIA",
            WrongRoomKeysVersion { .. } => "M_WRONG_ROOM_KEYS_VERSION",
            UnsupportedRoomVersion(_) => "M_UNSUPPORTED_ROOM_VERSION",
            IncompatibleRoomVersion(_) => "M_INCOMPATIBLE_ROOM_VERSION",
            RoomInUse(_) => "M_ROOM_IN_USE",
            Exclusive(_) => "M_EXCLUSIVE",
            Upstream { errcode, .. } => errcode,
        }
    }

    /// The JSON body sent to the client.
    pub fn body(&self) -> Value {
        match self {
            Error::Uia(v) => v.clone(),
            Error::Internal(_) => json!({"errcode": "M_UNKNOWN", "error": "Internal server error"}),
            Error::LimitExceeded(msg, ms) => {
                json!({"errcode": self.errcode(), "error": msg, "retry_after_ms": ms})
            }
            Error::WrongRoomKeysVersion { current_version } => json!({
                "errcode": self.errcode(),
                "error": self.to_string(),
                "current_version": current_version,
            }),
            Error::Upstream { extra, .. } => {
                let mut body = json!({"errcode": self.errcode(), "error": self.to_string()});
                if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
                    b.extend(extra.clone());
                }
                body
            }
            other => json!({"errcode": other.errcode(), "error": other.to_string()}),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Internal(format!("database: {e}"))
    }
}

/// Shorthand constructors keep call sites short: `Err(forbidden("..."))`.
pub fn forbidden(msg: impl Into<String>) -> Error {
    Error::Forbidden(msg.into())
}
pub fn bad_json(msg: impl Into<String>) -> Error {
    Error::BadJson(msg.into())
}
pub fn not_found(msg: impl Into<String>) -> Error {
    Error::NotFound(msg.into())
}
pub fn invalid_param(msg: impl Into<String>) -> Error {
    Error::InvalidParam(msg.into())
}
pub fn missing_param(msg: impl Into<String>) -> Error {
    Error::MissingParam(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_follow_the_spec() {
        let e = Error::UnknownToken("x".into());
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(e.body()["errcode"], "M_UNKNOWN_TOKEN");
        let e = Error::MethodNotAllowed("x".into());
        assert_eq!((e.status().as_u16(), e.errcode()), (405, "M_UNRECOGNIZED"));
        let e = Error::Internal("secret path /etc".into());
        assert!(!e.body().to_string().contains("/etc"), "internal causes never leak");
        let e = Error::LimitExceeded("slow down".into(), 1500);
        assert_eq!(e.body()["retry_after_ms"], 1500);
    }
}
