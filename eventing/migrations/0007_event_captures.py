"""event_captures: what trigger functions capture, until the listener turns it into events."""

from django.db import migrations, models


# Expands up to `max_captures` captures in one statement (one round trip for the listener):
# each table's generated expander writes the event rows, then the captures are deleted. A group
# whose expander fails is kept (its error is returned); one whose expander is gone is skipped.
# Given `sent_at`, the new rows the listener sends are marked sent in the same statement (as
# eventing.dispatch.sweeper.mark_sent would: staged, deliverable, due by `sent_until`, and an
# ordered row only when no earlier row of its trigger and key is unfinished, as
# eventing.dispatch.ordering.not_blocked says) and returned for it to publish after commit.
EXPAND_FUNCTION = """
CREATE OR REPLACE FUNCTION event_captures_expand(
  max_captures integer, sent_at timestamptz, sent_until timestamptz,
  OUT expanded integer, OUT batch_ids uuid[], OUT failures text[],
  OUT sent_ids uuid[], OUT sent_due timestamptz[], OUT sent_triggers bigint[]
) LANGUAGE plpgsql AS $eventing$
DECLARE
  g record;
  found_ uuid[];
  done_ bigint[] := '{}';
BEGIN
  batch_ids := '{}';
  failures := '{}';
  FOR g IN
    SELECT p.schema, p.expander, array_agg(p.id ORDER BY p.id) AS ids FROM (
      SELECT c.id, c.schema, c.expander FROM event_captures AS c
      WHERE left(c.expander, 24) = 'eventing_capture_expand_'
        AND to_regproc(quote_ident(c.schema) || '.' || quote_ident(c.expander)) IS NOT NULL
      ORDER BY c.id LIMIT max_captures FOR UPDATE SKIP LOCKED
    ) AS p GROUP BY p.schema, p.expander ORDER BY min(p.id)
  LOOP
    BEGIN
      EXECUTE format(
        'SELECT array_agg(b) FROM (SELECT %I.%I(c) AS b FROM event_captures AS c '
        'WHERE c.id = ANY($1) ORDER BY c.id) AS x WHERE b IS NOT NULL',
        g.schema, g.expander
      ) INTO found_ USING g.ids;
      batch_ids := batch_ids || coalesce(found_, '{}');
      done_ := done_ || g.ids;
    EXCEPTION WHEN OTHERS THEN
      failures := failures || format('%s.%s %s: %s', g.schema, g.expander, g.ids, SQLERRM);
    END;
  END LOOP;
  DELETE FROM event_captures WHERE id = ANY(done_);
  expanded := cardinality(done_);
  IF sent_at IS NOT NULL AND cardinality(batch_ids) > 0 THEN
    -- Rows this transaction wrote: no one else can lock them. Unordered and ordered rows are
    -- marked by two statements, so unordered rows never reach the NOT EXISTS (PostgreSQL does
    -- not promise to short-circuit an OR), which can be an anti-join on the ordering index.
    WITH unordered AS (
      UPDATE event_logs AS e SET enqueued_at = sent_at
      FROM event_triggers AS t
      WHERE e.batch_id = ANY(batch_ids) AND e.status = 'staged' AND e.enqueued_at IS NULL
        AND e.deliver_at <= sent_until AND t.id = e.trigger_id AND t.enabled AND NOT t.paused
        AND e.ordering_key IS NULL
      RETURNING e.id, e.deliver_at, e.trigger_id
    ), ordered AS (
      UPDATE event_logs AS e SET enqueued_at = sent_at
      FROM event_triggers AS t
      WHERE e.batch_id = ANY(batch_ids) AND e.status = 'staged' AND e.enqueued_at IS NULL
        AND e.deliver_at <= sent_until AND t.id = e.trigger_id AND t.enabled AND NOT t.paused
        AND e.ordering_key IS NOT NULL
        -- Behind an unfinished row of its key (an older one, or an earlier one of this pass):
        -- no message; the head sends it when it finishes, or the sweeper once unblocked.
        AND NOT EXISTS (
          SELECT 1 FROM event_logs AS a
          WHERE a.trigger_id = e.trigger_id AND a.ordering_key = e.ordering_key
            AND a.status IN ('intent', 'staged', 'processing')
            AND (a.created_at < e.created_at OR (a.created_at = e.created_at AND a.id < e.id))
        )
      RETURNING e.id, e.deliver_at, e.trigger_id
    ), marked AS (
      SELECT * FROM unordered UNION ALL SELECT * FROM ordered
    )
    SELECT array_agg(m.id ORDER BY m.deliver_at), array_agg(m.deliver_at ORDER BY m.deliver_at),
      array_agg(m.trigger_id ORDER BY m.deliver_at)
    INTO sent_ids, sent_due, sent_triggers FROM marked AS m;
  END IF;
END
$eventing$
"""


def install(apps, schema_editor):
    """Rows stored uncompressed (a 10,000-row statement's are megabytes: compressing them would
    cost the writer), and the function the listener expands captures with."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE event_captures ALTER old_rows SET STORAGE EXTERNAL, "
            "ALTER new_rows SET STORAGE EXTERNAL"
        )
        # Without parameters, so the % of format() reach PostgreSQL as written.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(EXPAND_FUNCTION)


def uninstall(apps, schema_editor):
    """Drop the expanding function before its table goes."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS event_captures_expand(integer, timestamptz, timestamptz)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("eventing", "0006_ordering_throttle"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventCapture",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "schema",
                    models.CharField(
                        help_text="Schema of the table and its functions.", max_length=63
                    ),
                ),
                (
                    "table",
                    models.CharField(help_text="The table the statement wrote.", max_length=63),
                ),
                ("kind", models.CharField(help_text="insert, update or delete.", max_length=6)),
                (
                    "expander",
                    models.CharField(
                        help_text=(
                            "The function that turns this capture into event rows "
                            "(eventing_capture_x…)."
                        ),
                        max_length=63,
                    ),
                ),
                (
                    "trigger_ids",
                    models.JSONField(
                        help_text="Triggers enabled when the statement ran: only these get an event."
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        help_text="When the statement ran (the events' created_at)."
                    ),
                ),
                (
                    "actor",
                    models.TextField(
                        blank=True,
                        help_text=(
                            "Who made the change (the writing session's eventing.actor), "
                            "if known."
                        ),
                        null=True,
                    ),
                ),
                (
                    "old_rows",
                    models.TextField(
                        blank=True,
                        help_text="The rows before the statement, as a JSON array.",
                        null=True,
                    ),
                ),
                (
                    "new_rows",
                    models.TextField(
                        blank=True,
                        help_text="The rows after the statement, as a JSON array.",
                        null=True,
                    ),
                ),
            ],
            options={
                "verbose_name": "event capture",
                "verbose_name_plural": "event captures",
                "db_table": "event_captures",
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
