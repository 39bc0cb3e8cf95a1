from django.db import migrations

# Reuses 0002's audit_event_append_only(), which names the refused operation (TG_OP is 'TRUNCATE' here).
FORBID = """
CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();

CREATE OR REPLACE FUNCTION audit_chain_head_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'audit chain heads are never removed: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.chain <> OLD.chain THEN
        RAISE EXCEPTION 'an audit chain head keeps its chain (% -> % refused)', OLD.chain, NEW.chain
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.last_seq < OLD.last_seq
       OR (NEW.last_seq = OLD.last_seq AND NEW.last_hash IS DISTINCT FROM OLD.last_hash) THEN
        RAISE EXCEPTION 'audit chain % never moves backwards (seq % -> % refused)', OLD.chain, OLD.last_seq, NEW.last_seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_chain_head_forward_only
    BEFORE UPDATE OR DELETE ON audit_chainhead
    FOR EACH ROW EXECUTE FUNCTION audit_chain_head_forward_only();

CREATE TRIGGER audit_chain_head_no_truncate
    BEFORE TRUNCATE ON audit_chainhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_forward_only();
"""

ALLOW = """
DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chainhead;
DROP TRIGGER IF EXISTS audit_chain_head_forward_only ON audit_chainhead;
DROP FUNCTION IF EXISTS audit_chain_head_forward_only();
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
"""


class Migration(migrations.Migration):
    """TRUNCATE of the audit table is refused as UPDATE and DELETE are (a role granted TRUNCATE but not owning the
    table cannot empty it), and a chain's head only moves forward: its seq never goes down, its hash never changes
    without its seq going up, and it is never deleted, so rewinding a chain to hide its last events is refused too.
    Only the table's owner can switch these off (ALTER TABLE ... DISABLE TRIGGER); the signed checkpoints catch
    what it could then do."""

    dependencies = [("audit", "0003_plain_indexes")]

    operations = [migrations.RunSQL(FORBID, ALLOW)]
