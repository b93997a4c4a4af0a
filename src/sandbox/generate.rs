//! Deterministic generated users: user number `index` of a tenant with seed `seed` is computed on
//! demand, so a tenant of 100,000 users costs no memory.
//!
//! Contract: [`user`] is a pure function of its arguments; [`user_id`] encodes the index so that
//! [`index_of`] can find a generated user by id without a table; licence assignment depends on
//! (seed, index, SKU position) only, so [`has_licence`] can count consumed units cheaply.
//! Group-based licensing: a licence a user holds is inherited from the SKU's licensing group with
//! probability `group_share` (else assigned directly); 5 % of the inherited ones are also
//! assigned directly, as happens when an administrator adds a user to a group later.
//! `licenseAssignmentStates` lists one entry per source (`assignedByGroup` = the group id, or
//! `null` for a direct assignment), while `assignedLicenses` lists each SKU once.

use serde_json::{Map, Value, json};

/// A SKU as the generator sees it: id, the share of users holding it, and how it is assigned.
#[derive(Debug, Clone)]
pub struct GeneratedSku {
    /// SKU id.
    pub sku_id: String,
    /// Probability (0..=1) that a user holds it.
    pub share: f64,
    /// Probability (0..=1) that a holder inherits it from [`GeneratedSku::group_id`].
    pub group_share: f64,
    /// The licensing group of this SKU in the tenant.
    pub group_id: String,
}

/// The parameters of a generated population.
#[derive(Debug, Clone)]
pub struct Population<'a> {
    /// Seed.
    pub seed: u64,
    /// Tenant primary domain.
    pub domain: &'a str,
    /// Company name.
    pub company: &'a str,
    /// SKUs that may be assigned.
    pub skus: &'a [GeneratedSku],
}

/// splitmix64: a tiny, well-distributed mixing function.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn h(seed: u64, index: u64, salt: u64) -> u64 {
    mix(mix(seed ^ salt.wrapping_mul(0xA24B_AED4_963E_E407)) ^ index)
}

fn pick<'a>(list: &[&'a str], seed: u64, index: u64, salt: u64) -> &'a str {
    list[(h(seed, index, salt) % list.len() as u64) as usize]
}

fn unit(seed: u64, index: u64, salt: u64) -> f64 {
    (h(seed, index, salt) >> 11) as f64 / (1u64 << 53) as f64
}

/// The object id of generated user `index`: random-looking, but the last 12 hex digits are the index.
pub fn user_id(seed: u64, index: u64) -> String {
    let a = h(seed, 0, 0xD1);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (a >> 12) & 0xfff,
        index
    )
}

/// The index of a generated user id of this seed, if it is one.
pub fn index_of(seed: u64, id: &str) -> Option<u64> {
    let (prefix, tail) = id.rsplit_once('-')?;
    let index = u64::from_str_radix(tail, 16).ok()?;
    user_id(seed, index).starts_with(prefix).then_some(index)
}

/// Whether generated user `index` is a guest (guests hold no licences).
pub fn is_guest(seed: u64, index: u64) -> bool {
    unit(seed, index, 4) < 0.03
}

/// Whether generated user `index` holds SKU number `sku_pos` of the population.
pub fn has_licence(pop: &Population<'_>, index: u64, sku_pos: usize) -> bool {
    let share = pop.skus.get(sku_pos).map(|s| s.share).unwrap_or(0.0);
    unit(pop.seed, index, 100 + sku_pos as u64) < share
}

const FIRST: &[&str] = &[
    "Aiko", "Amara", "Anders", "Beatriz", "Carlos", "Chen", "Dmitri", "Elena", "Fatima", "Giulia",
    "Hana", "Ibrahim", "Ingrid", "Jamal", "Julia", "Kenji", "Lars", "Leila", "Lucas", "Maria",
    "Mateo", "Mei", "Nadia", "Noah", "Olga", "Omar", "Priya", "Rafael", "Sofia", "Tomas", "Yusuf",
    "Zara",
];
const LAST: &[&str] = &[
    "Andersen",
    "Bauer",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Martin",
    "Nakamura",
    "Novak",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Silva",
    "Tanaka",
    "Umarov",
    "Varga",
    "Wagner",
    "Xu",
    "Yilmaz",
    "Zimmermann",
];
const JOBS: &[&str] = &[
    "Accountant",
    "Analyst",
    "Buyer",
    "Consultant",
    "Developer",
    "Engineer",
    "Designer",
    "Manager",
    "Sales Representative",
    "Support Specialist",
    "Team Lead",
    "Technician",
];
const DEPARTMENTS: &[&str] = &[
    "Sales",
    "Marketing",
    "Finance",
    "Operations",
    "Engineering",
    "Support",
    "Legal",
    "HR",
];
/// (city, state, country, usage location, language, postal prefix)
const PLACES: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("Seattle", "WA", "United States", "US", "en-US", "981"),
    ("Chicago", "IL", "United States", "US", "en-US", "606"),
    ("London", "England", "United Kingdom", "GB", "en-GB", "EC1"),
    ("Berlin", "Berlin", "Germany", "DE", "de-DE", "101"),
    (
        "Lyon",
        "Auvergne-Rhone-Alpes",
        "France",
        "FR",
        "fr-FR",
        "690",
    ),
    ("Madrid", "Madrid", "Spain", "ES", "es-ES", "280"),
    ("Toronto", "ON", "Canada", "CA", "en-CA", "M5V"),
    ("Sydney", "NSW", "Australia", "AU", "en-AU", "200"),
];

/// How generated user `index` holds SKU number `sku_pos` (when it holds it): through the
/// SKU's group, directly, or both.
pub fn licence_sources(pop: &Population<'_>, index: u64, sku_pos: usize) -> (bool, bool) {
    let share = pop.skus.get(sku_pos).map(|s| s.group_share).unwrap_or(0.0);
    let by_group = unit(pop.seed, index, 200 + sku_pos as u64) < share;
    let direct = !by_group || unit(pop.seed, index, 300 + sku_pos as u64) < 0.05;
    (by_group, direct)
}

fn licence_state(sku_id: &str, group: Option<&str>, at: &str) -> Value {
    json!({"skuId": sku_id, "assignedByGroup": group, "state": "Active", "error": "None",
        "disabledPlans": [], "lastUpdatedDateTime": at})
}

/// Computes generated user `index` as a full Graph user object.
pub fn user(pop: &Population<'_>, index: u64) -> Map<String, Value> {
    let s = pop.seed;
    let first = pick(FIRST, s, index, 1);
    let last = pick(LAST, s, index, 2);
    let place = PLACES[(h(s, index, 3) % PLACES.len() as u64) as usize];
    let upn = format!("{}.{}{}@{}", first, last, index, pop.domain).to_lowercase();
    let guest = is_guest(s, index);
    let held: Vec<usize> = (0..pop.skus.len())
        .filter(|&p| !guest && has_licence(pop, index, p))
        .collect();
    let licences: Vec<Value> = held
        .iter()
        .map(|&p| json!({"skuId": pop.skus[p].sku_id, "disabledPlans": []}))
        .collect();
    let ext: Map<String, Value> = (1..=15)
        .map(|n| {
            let v = if n == 1 {
                json!(format!("CC-{:04}", h(s, index, 5) % 10_000))
            } else {
                Value::Null
            };
            (format!("extensionAttribute{n}"), v)
        })
        .collect();
    let created_days = 30 + h(s, index, 6) % 3000;
    let created = chrono::DateTime::<chrono::Utc>::from_timestamp(
        1_760_000_000 - created_days as i64 * 86_400,
        0,
    )
    .unwrap_or_default();
    let assigned_at = created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let states: Vec<Value> = held
        .iter()
        .flat_map(|&p| {
            let sku = &pop.skus[p];
            let (by_group, direct) = licence_sources(pop, index, p);
            let group =
                by_group.then(|| licence_state(&sku.sku_id, Some(&sku.group_id), &assigned_at));
            let own = direct.then(|| licence_state(&sku.sku_id, None, &assigned_at));
            group.into_iter().chain(own)
        })
        .collect();
    let value = json!({
        "id": user_id(s, index),
        "displayName": format!("{first} {last}"),
        "givenName": first,
        "surname": last,
        "userPrincipalName": if guest { format!("{}.{}{}_ext#EXT#@{}", first, last, index, pop.domain).to_lowercase() } else { upn.clone() },
        "mail": upn,
        "mailNickname": format!("{first}.{last}{index}").to_lowercase(),
        "jobTitle": pick(JOBS, s, index, 7),
        "department": pick(DEPARTMENTS, s, index, 8),
        "companyName": pop.company,
        "officeLocation": format!("{} {}", place.0, 1 + h(s, index, 9) % 12),
        "city": place.0,
        "state": place.1,
        "country": place.2,
        "postalCode": format!("{}{:02}", place.5, h(s, index, 10) % 100),
        "streetAddress": format!("{} {} Street", 1 + h(s, index, 11) % 999, pick(LAST, s, index, 12)),
        "usageLocation": place.3,
        "preferredLanguage": place.4,
        "businessPhones": [format!("+1 555 {:04}", h(s, index, 13) % 10_000)],
        "mobilePhone": Value::Null,
        "userType": if guest { "Guest" } else { "Member" },
        "accountEnabled": unit(s, index, 14) >= 0.05,
        "createdDateTime": created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "employeeId": format!("E{:07}", index),
        "assignedLicenses": licences,
        "licenseAssignmentStates": states,
        "onPremisesExtensionAttributes": ext,
    });
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pop() -> Vec<GeneratedSku> {
        vec![GeneratedSku {
            sku_id: "a".into(),
            share: 0.5,
            group_share: 0.6,
            group_id: "g".into(),
        }]
    }

    #[test]
    fn same_seed_and_index_give_the_same_user_and_ids_round_trip() {
        let skus = pop();
        let p = Population {
            seed: 7,
            domain: "x.example",
            company: "X",
            skus: &skus,
        };
        assert_eq!(user(&p, 42), user(&p, 42));
        assert_ne!(user(&p, 42)["id"], user(&p, 43)["id"]);
        assert_eq!(index_of(7, &user_id(7, 99_999)), Some(99_999));
        assert_eq!(index_of(8, &user_id(7, 5)), None);
    }

    #[test]
    fn licence_share_is_roughly_respected() {
        let skus = pop();
        let p = Population {
            seed: 7,
            domain: "x.example",
            company: "X",
            skus: &skus,
        };
        let n = (0..10_000).filter(|&i| has_licence(&p, i, 0)).count();
        assert!((4_500..5_500).contains(&n), "{n}");
    }

    #[test]
    fn licence_states_name_every_source_and_match_assigned_licences() {
        let skus = pop();
        let p = Population {
            seed: 7,
            domain: "x.example",
            company: "X",
            skus: &skus,
        };
        let (mut group, mut direct, mut both) = (0, 0, 0);
        for i in 0..5_000 {
            let u = user(&p, i);
            let assigned = u["assignedLicenses"].as_array().unwrap().len();
            let states = u["licenseAssignmentStates"].as_array().unwrap();
            let by_group = states.iter().any(|s| s["assignedByGroup"] == "g");
            let own = states.iter().any(|s| s["assignedByGroup"].is_null());
            assert_eq!(assigned > 0, by_group || own, "user {i}");
            assert!(
                states
                    .iter()
                    .all(|s| s["skuId"] == "a" && s["state"] == "Active")
            );
            group += usize::from(by_group);
            direct += usize::from(own);
            both += usize::from(by_group && own);
        }
        assert!(
            group > direct && both > 0 && both < group / 10,
            "{group} {direct} {both}"
        );
    }
}
