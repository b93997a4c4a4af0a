//! Memory bound of the sandbox binary: paging through all 100,000 generated users (every
//! property selected) must not grow the process beyond a small, fixed amount, because users are
//! computed from (seed, index) one page at a time.
#![cfg(feature = "sandbox")]
#![cfg(target_os = "linux")]

use gdap_operator::sandbox::defaults as d;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const SELECT: &str = "id,displayName,givenName,surname,userPrincipalName,mail,jobTitle,department,companyName,\
officeLocation,city,state,country,postalCode,streetAddress,usageLocation,preferredLanguage,userType,accountEnabled,\
assignedLicenses,onPremisesExtensionAttributes,businessPhones,createdDateTime,employeeId";

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
#[ignore = "memory benchmark: run by `make bench`"]
async fn paging_100000_users_keeps_the_sandbox_small() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gdap-operator"))
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    let pid = child.id();

    let http = reqwest::Client::new();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", d::PARTNER_CLIENT_ID),
        ("client_secret", d::PARTNER_CLIENT_SECRET),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let token: serde_json::Value = http
        .post(format!(
            "{base}/{}/oauth2/v2.0/token",
            d::NORTHWIND_TENANT_ID
        ))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let before = vm_kib(pid, "VmRSS:");
    let (mut users, mut next) = (
        0usize,
        Some(format!("{base}/v1.0/users?$top=999&$select={SELECT}")),
    );
    while let Some(url) = next {
        let page: serde_json::Value = http
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        users += page["value"].as_array().unwrap().len();
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    let peak = vm_kib(pid, "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(users, d::NORTHWIND_USER_COUNT as usize);
    println!(
        "sandbox RSS before paging: {before} KiB; peak (VmHWM) after paging 100,000 users: {peak} KiB"
    );
    assert!(peak < 96 * 1024, "peak RSS {peak} KiB");
    assert!(
        peak < before + 48 * 1024,
        "paging grew RSS from {before} to {peak} KiB"
    );
}
