//! The console's users page in Debian's headless Chromium
//! (tests/console/users.mjs): the admin makes an operator with the form and
//! finds it on the audit page;
//! the operator, signed in by name, sees no users page actions and no token
//! or webhook forms (the API answers it 403); disabled by the admin, its
//! open console is signed out at its next request. Screenshots go to
//! `target/test-artifacts/console/`.

use std::time::Duration;

use serde_json::json;
use support::{BrowserScript, TestAppliance, browser_driver};

const PASSWORD: &str = "console-users-password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_users_in_the_console_and_an_operator_is_kept_out() {
    let Some(console_dir) = browser_driver("console", &[]) else { return };
    let app = TestAppliance::start_with_admin_password(PASSWORD).await;
    let shots = support::artifacts_dir("console");
    let url = app.url("");
    let args = [url.as_ref(), PASSWORD.as_ref(), shots.as_os_str()];
    let mut script = BrowserScript::start(&console_dir.join("users.mjs"), &args);
    let walk = async { while script.next_message().await.is_some() {} };
    tokio::time::timeout(Duration::from_secs(120), walk).await.expect("the users walk finishes in time");
    let report = script.report().await;
    eprintln!("users report: {report:#}");
    assert_eq!(report["error"], serde_json::Value::Null, "{report:#}");
    assert_eq!(report["admin_sees_users_link"], true);
    assert_eq!(report["admin_signed_in_as"], "admin (admin)");
    assert_eq!(report["listed"], json!([["admin", "admin", "built-in"], ["olga", "operator", "active"]]));
    assert_eq!(report["operator_signed_in_as"], "olga (operator)");
    assert_eq!(report["audit_newest"], json!(["user:admin", "user.created", "olga"]), "the audit page shows who");
    assert_eq!(
        (&report["operator_sees_users_link"], &report["operator_sees_audit_link"]),
        (&json!(false), &json!(false))
    );
    assert_eq!((&report["operator_user_form"], &report["operator_token_form"]), (&json!(false), &json!(false)));
    assert_eq!(report["operator_api"], json!({"list": 403, "create": 403}), "the API refuses the operator");
    assert_eq!(report["operator_signed_out"], true);
    assert_eq!(report["csp_violations"], json!([]), "{report:#}");
    app.appliance.shutdown().await;
}
