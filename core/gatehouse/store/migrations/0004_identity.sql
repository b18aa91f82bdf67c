-- Users, end users (customers), budgets, organizations and memberships: who a key belongs to,
-- who a call is made for, and the limits each of them sets.

-- A budget row: limits shared by whatever links to it (end users, team and organization
-- memberships, organizations).
CREATE TABLE gatehouse_budgets (
    budget_id TEXT PRIMARY KEY,
    max_budget DOUBLE PRECISION,
    soft_budget DOUBLE PRECISION,
    max_parallel_requests BIGINT,
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    model_max_budget TEXT NOT NULL DEFAULT '{}',
    budget_duration TEXT,
    budget_reset_at DOUBLE PRECISION,
    created_by TEXT,
    updated_by TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE gatehouse_users (
    user_id TEXT PRIMARY KEY,
    user_email TEXT,
    user_alias TEXT,
    user_role TEXT,
    teams TEXT NOT NULL DEFAULT '[]',
    models TEXT NOT NULL DEFAULT '[]',
    max_budget DOUBLE PRECISION,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_duration TEXT,
    budget_reset_at DOUBLE PRECISION,
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX gatehouse_users_email ON gatehouse_users (user_email);

-- End users: the ids calls are made for (the body's `user`), with a block flag and a budget.
CREATE TABLE gatehouse_end_users (
    user_id TEXT PRIMARY KEY,
    alias TEXT,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    blocked INTEGER NOT NULL DEFAULT 0,
    budget_id TEXT,
    allowed_model_region TEXT,
    default_model TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

-- Every user blocked through /customer/block so far stays blocked, now as an end user.
INSERT INTO gatehouse_end_users (user_id, blocked, created_at, updated_at)
    SELECT user_id, 1, blocked_at, blocked_at FROM gatehouse_blocked_users;

DROP TABLE gatehouse_blocked_users;

CREATE TABLE gatehouse_organizations (
    organization_id TEXT PRIMARY KEY,
    organization_alias TEXT NOT NULL,
    budget_id TEXT,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    models TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    created_by TEXT,
    updated_by TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

-- Memberships are looked up by one id, the JSON list [organization or team id, user id], so
-- the caches and the row lookups treat them like any other row.
CREATE TABLE gatehouse_organization_members (
    membership_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_role TEXT NOT NULL,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_id TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX gatehouse_organization_members_org ON gatehouse_organization_members (organization_id);
CREATE INDEX gatehouse_organization_members_user ON gatehouse_organization_members (user_id);

CREATE TABLE gatehouse_team_members (
    membership_id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_id TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX gatehouse_team_members_team ON gatehouse_team_members (team_id);
CREATE INDEX gatehouse_team_members_user ON gatehouse_team_members (user_id);

ALTER TABLE gatehouse_teams ADD COLUMN organization_id TEXT;
ALTER TABLE gatehouse_teams ADD COLUMN team_member_permissions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE gatehouse_teams ADD COLUMN model_aliases TEXT;
ALTER TABLE gatehouse_teams ADD COLUMN budget_duration TEXT;
ALTER TABLE gatehouse_teams ADD COLUMN budget_reset_at DOUBLE PRECISION;

CREATE INDEX gatehouse_teams_organization ON gatehouse_teams (organization_id);

-- The end user a call was made for (the body's `user`), apart from the key's owner.
ALTER TABLE gatehouse_spend_logs ADD COLUMN end_user TEXT;
