-- payer_sim: how often each DOWNONCE member (an outage a retry gets past) was asked about.
-- The key is a hash of payer and member id: the simulator keeps no member id.
CREATE TABLE IF NOT EXISTS {schema}.eligibility_member (
    member_key text PRIMARY KEY,
    inquiries  int NOT NULL DEFAULT 1
);
