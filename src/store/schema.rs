//! The state database's schema. Migrations are append-only: the index is the schema version
//! (`PRAGMA user_version`). Never edit or remove an entry; add one.

pub const APPLICATION_ID: i64 = 0x786f_6e65; // "xone"

pub const MIGRATIONS: &[&str] = &[
    // 1: the foundation
    "
    CREATE TABLE project (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        archived_at TEXT,
        next_seq INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE repo (
        id INTEGER PRIMARY KEY,
        project TEXT NOT NULL REFERENCES project(key),
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        location TEXT NOT NULL,
        default_branch TEXT NOT NULL,
        bare INTEGER NOT NULL DEFAULT 0,
        added_at TEXT NOT NULL,
        UNIQUE (project, name),
        UNIQUE (project, location)
    );
    CREATE TABLE member (
        project TEXT NOT NULL REFERENCES project(key),
        user TEXT NOT NULL,
        role TEXT NOT NULL,
        added_at TEXT NOT NULL,
        PRIMARY KEY (project, user, role)
    );
    CREATE TABLE template (
        project TEXT NOT NULL REFERENCES project(key),
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (project, kind)
    );
    CREATE TABLE requirement (
        key TEXT PRIMARY KEY,
        project TEXT NOT NULL REFERENCES project(key),
        seq INTEGER NOT NULL,
        title TEXT NOT NULL,
        status TEXT NOT NULL,
        branch TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        start_date TEXT,
        end_date TEXT,
        dev_end TEXT,
        test_submit TEXT,
        smoke TEXT,
        test_end TEXT,
        release_date TEXT,
        UNIQUE (project, seq)
    );
    CREATE INDEX requirement_status ON requirement (status);
    CREATE TABLE assignment (
        requirement TEXT NOT NULL REFERENCES requirement(key),
        role TEXT NOT NULL,
        user TEXT NOT NULL,
        PRIMARY KEY (requirement, role, user)
    );
    CREATE INDEX assignment_user ON assignment (user);
    CREATE TABLE blob (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE document (
        id INTEGER PRIMARY KEY,
        requirement TEXT NOT NULL REFERENCES requirement(key),
        kind TEXT NOT NULL,
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL REFERENCES blob(sha256),
        media_type TEXT NOT NULL,
        file_name TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        note TEXT,
        UNIQUE (requirement, kind, version)
    );
    CREATE TABLE review (
        id INTEGER PRIMARY KEY,
        requirement TEXT NOT NULL REFERENCES requirement(key),
        kind TEXT NOT NULL,
        at TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        verdict TEXT,
        verdict_at TEXT,
        verdict_by TEXT,
        note TEXT,
        doc_version INTEGER
    );
    CREATE INDEX review_requirement ON review (requirement, kind);
    CREATE TABLE review_attendee (
        review INTEGER NOT NULL REFERENCES review(id),
        user TEXT NOT NULL,
        PRIMARY KEY (review, user)
    );
    CREATE TABLE review_comment (
        id INTEGER PRIMARY KEY,
        review INTEGER NOT NULL REFERENCES review(id),
        author TEXT NOT NULL,
        created_at TEXT NOT NULL,
        section TEXT,
        body TEXT NOT NULL,
        resolved_at TEXT,
        resolved_by TEXT
    );
    CREATE TABLE branch (
        requirement TEXT NOT NULL REFERENCES requirement(key),
        repo INTEGER NOT NULL REFERENCES repo(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        base TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (requirement, repo)
    );
    CREATE TABLE signoff (
        id INTEGER PRIMARY KEY,
        requirement TEXT NOT NULL REFERENCES requirement(key),
        user TEXT NOT NULL,
        at TEXT NOT NULL,
        note TEXT
    );
    CREATE TABLE event (
        id INTEGER PRIMARY KEY,
        project TEXT NOT NULL,
        requirement TEXT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        from_status TEXT,
        to_status TEXT,
        detail TEXT,
        reason TEXT,
        forced INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX event_requirement ON event (requirement);
    ",
    // 2: integrations (AoneFlow): which commit of which feature branch went into which
    // environment's integration branch, per repository and run
    "
    CREATE TABLE integration (
        id INTEGER PRIMARY KEY,
        project TEXT NOT NULL REFERENCES project(key),
        env TEXT NOT NULL,
        repo INTEGER NOT NULL REFERENCES repo(id) ON DELETE CASCADE,
        branch TEXT NOT NULL,
        base TEXT NOT NULL,
        base_sha TEXT NOT NULL,
        sha TEXT,
        status TEXT NOT NULL,
        detail TEXT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL
    );
    CREATE INDEX integration_env ON integration (project, env, repo);
    CREATE TABLE integration_item (
        integration INTEGER NOT NULL REFERENCES integration(id) ON DELETE CASCADE,
        requirement TEXT NOT NULL REFERENCES requirement(key),
        feature_branch TEXT NOT NULL,
        sha TEXT NOT NULL,
        PRIMARY KEY (integration, requirement)
    );
    CREATE INDEX integration_item_requirement ON integration_item (requirement);
    ",
    // 3: repositories on GitLab: the project's numeric id and its URLs, resolved once at
    // `repo add` so that a branch operation costs one request per repository
    "
    ALTER TABLE repo ADD COLUMN remote_id INTEGER;
    ALTER TABLE repo ADD COLUMN clone_url TEXT;
    ALTER TABLE repo ADD COLUMN web_url TEXT;
    ",
    // 4: apps (deployable services of a project) and builds (a pipeline run or a local image
    // build of one app at one commit, with its tests, coverage, gates, image and digest)
    "
    CREATE TABLE app (
        id INTEGER PRIMARY KEY,
        project TEXT NOT NULL REFERENCES project(key),
        name TEXT NOT NULL,
        repo INTEGER NOT NULL REFERENCES repo(id),
        image TEXT,
        dockerfile TEXT NOT NULL DEFAULT 'Dockerfile',
        context TEXT NOT NULL DEFAULT '.',
        port INTEGER,
        health TEXT,
        replicas TEXT NOT NULL DEFAULT '{}',
        test_cmd TEXT,
        junit TEXT NOT NULL DEFAULT 'junit.xml',
        cobertura TEXT NOT NULL DEFAULT 'coverage.xml',
        added_at TEXT NOT NULL,
        UNIQUE (project, name)
    );
    CREATE TABLE build (
        id INTEGER PRIMARY KEY,
        app INTEGER NOT NULL REFERENCES app(id) ON DELETE CASCADE,
        requirement TEXT REFERENCES requirement(key),
        ref TEXT NOT NULL,
        sha TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        pid INTEGER,
        pipeline_id INTEGER,
        pipeline_url TEXT,
        tests TEXT,
        coverage REAL,
        gates TEXT NOT NULL DEFAULT '[]',
        image TEXT,
        digest TEXT,
        detail TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        actor TEXT NOT NULL
    );
    CREATE INDEX build_app ON build (app, id);
    CREATE INDEX build_requirement ON build (requirement);
    ",
    // 5: environments: where a project's apps run (a Kubernetes context and namespace), its
    // metrics (Prometheus), its image registry and its smoke check
    "
    CREATE TABLE env (
        project TEXT NOT NULL REFERENCES project(key),
        name TEXT NOT NULL,
        context TEXT NOT NULL,
        namespace TEXT NOT NULL,
        prometheus TEXT,
        registry TEXT,
        smoke TEXT,
        set_at TEXT NOT NULL,
        PRIMARY KEY (project, name)
    );
    ",
    // 6: deployments (one rollout of an image of an app to an environment, or a rollback,
    // with the Kubernetes revisions before and after), post-release watches, and the
    // Prometheus selectors an environment or app overrides
    "
    ALTER TABLE app ADD COLUMN manifests TEXT;
    ALTER TABLE app ADD COLUMN alert_labels TEXT;
    ALTER TABLE app ADD COLUMN error_query TEXT;
    ALTER TABLE env ADD COLUMN alert_labels TEXT;
    ALTER TABLE env ADD COLUMN error_query TEXT;
    CREATE TABLE deploy (
        id INTEGER PRIMARY KEY,
        project TEXT NOT NULL REFERENCES project(key),
        app TEXT NOT NULL,
        env TEXT NOT NULL,
        kind TEXT NOT NULL,
        requirement TEXT REFERENCES requirement(key),
        build INTEGER REFERENCES build(id),
        image TEXT NOT NULL,
        sha TEXT,
        context TEXT NOT NULL,
        namespace TEXT NOT NULL,
        status TEXT NOT NULL,
        revision INTEGER,
        prev_revision INTEGER,
        prev_rs TEXT,
        detail TEXT,
        pid INTEGER,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        actor TEXT NOT NULL
    );
    CREATE INDEX deploy_app ON deploy (project, app, env, id);
    CREATE INDEX deploy_requirement ON deploy (requirement);
    CREATE TABLE watch (
        id INTEGER PRIMARY KEY,
        project TEXT NOT NULL REFERENCES project(key),
        app TEXT NOT NULL,
        env TEXT NOT NULL,
        revision INTEGER,
        image TEXT,
        window_secs INTEGER NOT NULL,
        error_rate REAL NOT NULL,
        status TEXT NOT NULL,
        detail TEXT,
        started_at TEXT NOT NULL,
        started_unix INTEGER NOT NULL,
        finished_at TEXT,
        actor TEXT NOT NULL
    );
    CREATE INDEX watch_app ON watch (project, app, env, id);
    ",
    // 7: gray releases: this machine's copy of each one's state (the cluster's ConfigMap is
    // the truth), for `requirement show` and the log
    "
    CREATE TABLE gray (
        project TEXT NOT NULL REFERENCES project(key),
        app TEXT NOT NULL,
        env TEXT NOT NULL,
        started_at TEXT NOT NULL,
        requirement TEXT,
        phase TEXT NOT NULL,
        state TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (project, app, env, started_at)
    );
    CREATE INDEX gray_requirement ON gray (requirement);
    ",
    // 8: the state a requirement was in when it was signed off: QA signs off in testing, the
    // product manager accepts the gray release in gray
    "
    ALTER TABLE signoff ADD COLUMN stage TEXT;
    ",
    // 9: where a project's requirements live: the built-in tracker, or a Jira project
    "
    ALTER TABLE project ADD COLUMN tracker TEXT NOT NULL DEFAULT 'builtin';
    ALTER TABLE project ADD COLUMN jira_project TEXT;
    ",
    // 10: when each project was last synced from its tracker
    "
    CREATE TABLE sync_state (
        project TEXT PRIMARY KEY REFERENCES project(key),
        synced_at TEXT NOT NULL
    );
    ",
    // 11: the Jira account each member acts as
    "
    CREATE TABLE member_account (
        project TEXT NOT NULL REFERENCES project(key),
        user TEXT NOT NULL,
        jira_account TEXT NOT NULL,
        PRIMARY KEY (project, user)
    );
    ",
    // 12: changes for Jira made while it could not be reached, pushed in order later
    "
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        requirement TEXT NOT NULL,
        op TEXT NOT NULL,
        payload TEXT NOT NULL,
        actor TEXT NOT NULL,
        queued_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued',
        detail TEXT
    );
    ",
    // 13: keys a requirement had before its project moved to Jira, which every command still
    // takes; and a move under way, one requirement's issue at a time
    "
    CREATE TABLE requirement_alias (
        alias TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX requirement_alias_key ON requirement_alias (key);
    CREATE TABLE key_move (
        project TEXT NOT NULL REFERENCES project(key),
        old TEXT NOT NULL,
        new TEXT NOT NULL,
        filled INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project, old)
    );
    ",
    // 14: notifications, written with the change they tell of, and how far each target has
    // taken them
    "
    CREATE TABLE notice (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery TEXT NOT NULL,
        event TEXT NOT NULL,
        project TEXT,
        body TEXT NOT NULL,
        at TEXT NOT NULL
    );
    ALTER TABLE review ADD COLUMN origin TEXT;
    UPDATE review SET origin = lower(hex(randomblob(8)));
    CREATE UNIQUE INDEX review_origin ON review (origin);
    CREATE TABLE notice_target (
        target TEXT PRIMARY KEY,
        delivered INTEGER NOT NULL,
        error TEXT,
        tried_at TEXT,
        tried_unix INTEGER,
        lease INTEGER
    );
    ",
];
