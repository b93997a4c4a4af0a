//! The chart's Argo CD health checks (`charts/gdap-operator/argocd/gdap.io/<Kind>/health.lua`),
//! run the way Argo CD runs a script from `argocd-cm`: Lua 5.1 (Argo CD embeds gopher-lua, a Lua
//! 5.1), the object as the global `obj`, only the libraries Argo CD opens for such scripts (base,
//! table and a safe os; no string library, not even through string methods), and a returned
//! table whose `status` must be one of Argo CD's health codes.
//!
//! The interpreter is Debian's `lua5.1` (installed by scripts/deps).

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The health codes Argo CD accepts from a script (anything else becomes `Unknown`).
pub const HEALTH_CODES: [&str; 6] = [
    "Healthy",
    "Progressing",
    "Degraded",
    "Suspended",
    "Missing",
    "Unknown",
];

/// The kinds with a health check.
pub const KINDS: [&str; 4] = ["GdapRelationship", "AppConsent", "TenantSync", "GdapFleet"];

/// The folder of one kind's health check, Argo CD's `resource_customizations/<group>/<Kind>` layout.
pub fn kind_dir(kind: &str) -> PathBuf {
    super::root()
        .join("charts/gdap-operator/argocd/gdap.io")
        .join(kind)
}

/// The Lua interpreter, or a failure that says how to get it.
fn lua() -> &'static str {
    const LUA: &str = "lua5.1";
    let found = Command::new(LUA)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{LUA} is not installed; run scripts/deps (it installs Debian's lua5.1)"
    );
    LUA
}

/// Runs the health check of `kind` on `object` and returns Argo CD's `(status, message)`.
pub fn health(kind: &str, object: &Value) -> (String, String) {
    let script = kind_dir(kind).join("health.lua");
    assert!(script.is_file(), "{} is missing", script.display());
    let program = format!(
        r#"
local obj = {object}
local chunk = assert(loadfile({path}))
-- Argo CD's VM for argocd-cm scripts: base, table and a safe os; no string library.
getmetatable("").__index = {{}}
setfenv(chunk, {{
  obj = obj, assert = assert, error = error, ipairs = ipairs, pairs = pairs, next = next,
  pcall = pcall, rawequal = rawequal, rawget = rawget, rawset = rawset, select = select,
  setmetatable = setmetatable, getmetatable = getmetatable, tonumber = tonumber,
  tostring = tostring, type = type, unpack = unpack,
  table = table, os = {{ time = os.time, date = os.date, clock = os.clock, difftime = os.difftime }},
}})
local hs = chunk()
if type(hs) ~= "table" then error("health.lua returned " .. type(hs) .. ", not a table") end
io.write(tostring(hs.status), "\n", hs.message == nil and "" or tostring(hs.message))
"#,
        object = lua_literal(object),
        path = lua_string(script.to_str().expect("UTF-8 path")),
    );
    let mut child = Command::new(lua())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lua starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(program.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{kind} health.lua failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 output");
    let (status, message) = text.split_once('\n').expect("status line");
    assert!(
        HEALTH_CODES.contains(&status),
        "{kind} health.lua returned {status:?}, which Argo CD turns into Unknown"
    );
    (status.to_string(), message.to_string())
}

/// A JSON value as a Lua 5.1 expression: objects and arrays become tables (arrays 1-based, as
/// Argo CD builds them), `null` becomes nil.
pub fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// A Lua string literal: printable ASCII as is, every other byte as a decimal escape.
fn lua_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for byte in text.bytes() {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
    out.push('"');
    out
}
