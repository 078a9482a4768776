//! The final status written on the error stream, as kubelet writes it and client-go reads it.
//!
//! v4 and later: a JSON `metav1.Status` (`{"metadata":{},"status":"Success"}`, or `Failure`
//! with reason `NonZeroExitCode` and a cause `{"reason":"ExitCode","message":"<code>"}` --
//! `StatusCause.Type` is named `reason` in JSON). v1 to v3: nothing on success, the message
//! text on failure.

use serde::Serialize;

/// `metav1.Status`, with the fields kubelet fills. Field order follows the Go struct so the
/// JSON matches `json.Marshal` byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Status {
    metadata: ListMeta,
    status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    #[serde(skip_serializing_if = "is_zero")]
    code: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct ListMeta {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Details {
    causes: Vec<Cause>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Cause {
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    message: String,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

/// `metav1.StatusSuccess`.
const SUCCESS: &str = "Success";
/// `metav1.StatusFailure`.
const FAILURE: &str = "Failure";
/// `remotecommand.NonZeroExitCodeReason`.
const NON_ZERO_EXIT_CODE: &str = "NonZeroExitCode";
/// `remotecommand.ExitCodeCauseType`.
const EXIT_CODE_CAUSE: &str = "ExitCode";
/// `metav1.StatusReasonInternalError`.
const INTERNAL_ERROR: &str = "InternalError";

impl Status {
    /// The command or attach finished without error.
    pub fn success() -> Self {
        Status {
            metadata: ListMeta {},
            status: SUCCESS,
            message: String::new(),
            reason: "",
            details: None,
            code: 0,
        }
    }

    /// The command exited with a non-zero code.
    pub fn exit_code(code: i32) -> Self {
        Status {
            metadata: ListMeta {},
            status: FAILURE,
            message: format!("command terminated with non-zero exit code: exit status {code}"),
            reason: NON_ZERO_EXIT_CODE,
            details: Some(Details {
                causes: vec![Cause {
                    reason: EXIT_CODE_CAUSE,
                    message: code.to_string(),
                }],
            }),
            code: 0,
        }
    }

    /// The runtime failed (`apierrors.NewInternalError`).
    pub fn internal_error(err: &str) -> Self {
        Status {
            metadata: ListMeta {},
            status: FAILURE,
            message: format!("Internal error occurred: {err}"),
            reason: INTERNAL_ERROR,
            details: Some(Details {
                causes: vec![Cause {
                    reason: "",
                    message: err.to_string(),
                }],
            }),
            code: 500,
        }
    }

    /// True for `Success`.
    pub fn is_success(&self) -> bool {
        self.status == SUCCESS
    }

    /// The v4+ JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The v1-v3 text form: nothing on success, the message otherwise.
    pub fn to_text(&self) -> Vec<u8> {
        if self.is_success() {
            Vec::new()
        } else {
            self.message.clone().into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_matches_go_marshal() {
        assert_eq!(
            String::from_utf8(Status::success().to_json()).unwrap(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        assert_eq!(
            String::from_utf8(Status::exit_code(3).to_json()).unwrap(),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
        assert_eq!(
            String::from_utf8(Status::internal_error("boom").to_json()).unwrap(),
            r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: boom","reason":"InternalError","details":{"causes":[{"message":"boom"}]},"code":500}"#
        );
    }

    #[test]
    fn text_form() {
        assert!(Status::success().to_text().is_empty());
        assert_eq!(
            Status::internal_error("x").to_text(),
            b"Internal error occurred: x"
        );
    }
}
