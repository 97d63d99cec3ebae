//! The dev tenants: two organisations, their users and their resources.
//! The demo producer writes their activity; the dashboard's dev sign-in
//! offers their users. Data only, so neither of the two imports the other.

/// A dev organisation: its users (id, display name) and resources.
pub struct DevOrg {
    pub id: &'static str,
    pub name: &'static str,
    pub users: &'static [(&'static str, &'static str)],
    pub pipeline: &'static str,
    /// Deal ids and titles.
    pub deals: &'static [(&'static str, &'static str)],
    pub contacts: &'static [(&'static str, &'static str)],
}

pub const ORGS: [DevOrg; 2] = [
    DevOrg {
        id: "org-acme",
        name: "Acme",
        users: &[
            ("user_alice", "Alice Martin"),
            ("user_bob", "Bob Chen"),
            ("user_carol", "Carol Diaz"),
        ],
        pipeline: "pipeline_acme_sales",
        deals: &[
            ("deal_acme_1", "Northwind renewal"),
            ("deal_acme_2", "Contoso expansion"),
            ("deal_acme_3", "Fabrikam pilot"),
            ("deal_acme_4", "Tailspin migration"),
            ("deal_acme_5", "Litware onboarding"),
        ],
        contacts: &[
            ("contact_acme_1", "jane@northwind.example"),
            ("contact_acme_2", "li@contoso.example"),
            ("contact_acme_3", "omar@fabrikam.example"),
        ],
    },
    DevOrg {
        id: "org-globex",
        name: "Globex",
        users: &[("user_dave", "Dave Okafor"), ("user_erin", "Erin Walsh")],
        pipeline: "pipeline_globex_enterprise",
        deals: &[
            ("deal_globex_1", "Initech licences"),
            ("deal_globex_2", "Umbrella support plan"),
            ("deal_globex_3", "Hooli integration"),
        ],
        contacts: &[
            ("contact_globex_1", "hank@initech.example"),
            ("contact_globex_2", "ivy@umbrella.example"),
        ],
    },
];
