//! The scale fixture: a partner the size of a real CSP — by default 1,000 customers and 1,500
//! GDAP relationships in mixed states — generated deterministically on top of another fixture
//! (`gdap-operator sandbox --scale-fixture`, or [`Fixture::with_scale`] in tests and benches).
//!
//! Contract: the same [`Scale`] always yields the same customers, relationships, ids and
//! assignments. Customer `i` (from 0) is tenant `derived_id("scale/customer/i")`; relationship `k`
//! belongs to customer `k % customers` and its state follows `k % 20` (shifted by three for a
//! customer's second relationship, see [`ScaleState::of_relationship`]): 11 of 20 active with one to
//! three access assignments, 1 active without assignments, 1 active with Global Administrator
//! (no auto-extend, one assignment), 2 awaiting approval, 1 created (not locked), 2 terminated
//! and 2 expired — 16 of 20 live, 4 ended. Four security groups are added to the partner.

use super::fixture::{
    AssignmentFixture, CustomerFixture, Fixture, GroupFixture, RelationshipFixture,
};
use super::ids::derived_id;

/// Size of the scale fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Customer tenants to add.
    pub customers: usize,
    /// Relationships to add (spread over the customers, round robin).
    pub relationships: usize,
}

impl Default for Scale {
    /// 1,000 customers, 1,500 relationships.
    fn default() -> Self {
        Scale {
            customers: 1000,
            relationships: 1500,
        }
    }
}

/// The security groups the scale fixture adds to the partner (display names).
pub const SCALE_GROUPS: [&str; 4] = [
    "Tier 1 Support",
    "Tier 2 Support",
    "Security Operations",
    "Licensing Desk",
];

/// What state relationship `k` is generated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleState {
    /// Active, with 1–3 access assignments.
    ActiveAssigned,
    /// Active, no access assignments.
    ActiveBare,
    /// Active with Global Administrator (never auto-extends), one assignment.
    ActiveGlobalAdmin,
    /// Locked, awaiting the customer's approval.
    ApprovalPending,
    /// Created, not locked.
    Created,
    /// Terminated.
    Terminated,
    /// Expired.
    Expired,
}

impl ScaleState {
    /// The state of relationship `k`.
    pub fn of(k: usize) -> ScaleState {
        match k % 20 {
            0..=10 => ScaleState::ActiveAssigned,
            11 => ScaleState::ActiveBare,
            12 | 13 => ScaleState::ApprovalPending,
            14 => ScaleState::Created,
            15 | 16 => ScaleState::Terminated,
            17 | 18 => ScaleState::Expired,
            _ => ScaleState::ActiveGlobalAdmin,
        }
    }

    /// The state of relationship `k` of a scale fixture with `customers` customers: a customer's
    /// second relationship is three states further on, so one customer's relationships differ.
    pub fn of_relationship(k: usize, customers: usize) -> ScaleState {
        ScaleState::of(k + 3 * (k / customers.max(1)))
    }

    /// Not terminated or expired.
    pub fn is_live(self) -> bool {
        !matches!(self, ScaleState::Terminated | ScaleState::Expired)
    }
}

const ROLE_SETS: [&[&str]; 4] = [
    &[
        "Helpdesk Administrator",
        "User Administrator",
        "Directory Readers",
    ],
    &[
        "Exchange Administrator",
        "SharePoint Administrator",
        "Teams Administrator",
        "Directory Readers",
    ],
    &["Security Reader", "Global Reader"],
    &[
        "License Administrator",
        "Service Support Administrator",
        "Directory Readers",
    ],
];

const WORDS: [&str; 16] = [
    "Alpine", "Birch", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris", "Juniper",
    "Kestrel", "Lumen", "Maple", "Nimbus", "Orchid", "Prairie",
];
const TRADES: [&str; 8] = [
    "Dental",
    "Logistics",
    "Bakery",
    "Legal",
    "Architects",
    "Clinic",
    "Robotics",
    "Travel",
];
const SUFFIXES: [&str; 4] = ["Ltd", "GmbH", "LLC", "Inc"];

/// Tenant id of scale customer `i`.
pub fn customer_id(i: usize) -> String {
    derived_id(&format!("scale/customer/{i}"))
}

/// Company name of scale customer `i`.
pub fn customer_name(i: usize) -> String {
    format!(
        "{} {} {:04} {}",
        WORDS[i % WORDS.len()],
        TRADES[(i / WORDS.len()) % TRADES.len()],
        i,
        SUFFIXES[i % SUFFIXES.len()]
    )
}

fn group_id(name: &str) -> String {
    derived_id(&format!("scale/group/{name}"))
}

impl Fixture {
    /// This fixture plus the generated partner estate of `scale`.
    pub fn with_scale(mut self, scale: Scale) -> Fixture {
        for name in SCALE_GROUPS {
            self.partner.groups.push(GroupFixture {
                id: group_id(name),
                display_name: name.into(),
            });
        }
        self.customers
            .extend((0..scale.customers).map(scale_customer));
        if scale.customers > 0 {
            self.relationships
                .extend((0..scale.relationships).map(|k| scale_relationship(k, scale.customers)));
        }
        self
    }
}

fn scale_customer(i: usize) -> CustomerFixture {
    CustomerFixture::signed(
        &customer_id(i),
        &customer_name(i),
        &format!("customer{i:04}.example"),
    )
}

/// Relationship `k` of a scale fixture with `customers` customers.
pub fn scale_relationship(k: usize, customers: usize) -> RelationshipFixture {
    let i = k % customers;
    let round = k / customers;
    let state = ScaleState::of_relationship(k, customers);
    let roles: Vec<String> = match state {
        ScaleState::ActiveGlobalAdmin => {
            vec!["Global Administrator".into(), "Directory Readers".into()]
        }
        _ => ROLE_SETS[k % ROLE_SETS.len()]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let durations = [730, 365, 180, 90];
    let duration = durations[(k / 3) % durations.len()];
    let (status, days_ago) = match state {
        ScaleState::ActiveAssigned | ScaleState::ActiveBare | ScaleState::ActiveGlobalAdmin => {
            ("active", (k as i64 * 7) % (duration - 1))
        }
        ScaleState::ApprovalPending => ("approvalPending", (k as i64) % 80),
        ScaleState::Created => ("created", (k as i64) % 30),
        ScaleState::Terminated => ("terminated", (k as i64) % 200),
        ScaleState::Expired => ("expired", (k as i64) % 200),
    };
    let groups = match state {
        ScaleState::ActiveAssigned | ScaleState::Terminated | ScaleState::Expired => 1 + k % 3,
        ScaleState::ActiveGlobalAdmin => 1,
        _ => 0,
    };
    let access_assignments = (0..groups)
        .map(|g| AssignmentFixture {
            group: SCALE_GROUPS[(k + g) % SCALE_GROUPS.len()].into(),
            roles: roles
                .iter()
                .skip(g % 2)
                .take(roles.len().max(2) - 1)
                .cloned()
                .collect(),
        })
        .collect();
    let ga = state == ScaleState::ActiveGlobalAdmin;
    let label = match (ga, round) {
        (true, 0) => "GA break-glass".to_string(),
        (true, r) => format!("GA break-glass {}", r + 1),
        (false, 0) => "Standard Access".to_string(),
        (false, 1) => "Project Access".to_string(),
        (false, r) => format!("Project Access {}", r + 1),
    };
    RelationshipFixture {
        display_name: format!("{} {label}", customer_name(i)),
        customer: customer_id(i),
        roles,
        duration: format!("P{duration}D"),
        auto_extend: !ga && k.is_multiple_of(3),
        status: status.into(),
        days_ago,
        id: None,
        access_assignments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scale_is_valid_deterministic_and_mixed() {
        let one = Fixture::builtin().with_scale(Scale::default());
        one.check()
            .expect("the scale fixture passes the fixture checks");
        assert_eq!(one.relationships.len(), 1500);
        assert_eq!(one.customers.len(), 3 + 1000);
        let two = Fixture::builtin().with_scale(Scale::default());
        assert_eq!(one.relationships, two.relationships, "deterministic");
        let live = (0..1500)
            .filter(|k| ScaleState::of_relationship(*k, 1000).is_live())
            .count();
        assert_eq!(live, 1200);
        let statuses: std::collections::BTreeSet<&str> = one
            .relationships
            .iter()
            .map(|r| r.status.as_str())
            .collect();
        assert_eq!(
            statuses.into_iter().collect::<Vec<_>>(),
            [
                "active",
                "approvalPending",
                "created",
                "expired",
                "terminated"
            ]
        );
        assert!(
            one.relationships
                .iter()
                .all(|r| r.display_name.chars().count() <= 50)
        );
    }

    #[test]
    fn ga_relationships_never_auto_extend() {
        let f = Fixture::builtin().with_scale(Scale::default());
        assert!(
            f.relationships
                .iter()
                .filter(|r| r.roles.iter().any(|x| x == "Global Administrator"))
                .all(|r| !r.auto_extend)
        );
    }
}
