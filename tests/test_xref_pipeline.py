"""Cross-referencing's pipeline through its services (xref.services): matches upserted from scored pairs,
decisions and identity clusters, full runs and their parts. (With a real worker: test_xref_worker.py.)"""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Q

from audit.models import AuditEvent
from core.rules import RuleViolation, StateConflict
from entities import services as entity_services
from entities.models import Entity
from xref import services
from xref.models import IdentityMember, Match, XrefRun

from . import factories


def _trio(agency):
    """Three spellings of one man: every pair of them scores well above the proposal threshold."""
    return (factories.person(agency, "Zhang Wei Antimony"), factories.person(agency, "Wei Zhang Antimony"),
            factories.person(agency, "Zhang Wei Antimon"))


def _pair(a, b):
    left, right = sorted([a.pk, b.pk])
    return Match.objects.get(left_id=left, right_id=right)


def _rows():
    return sorted(Match.objects.values_list("left_id", "right_id", "status", "archived", "score", "version"))


# --- matches -----------------------------------------------------------------------------------------------------


def test_records_changed_proposes_each_pair_once_with_its_reasons_and_again_changes_nothing(world):
    people = _trio(world.a)
    factories.person(world.a, "Somebody Else")
    assert services.records_changed([p.pk for p in people]) == 3
    matches = list(Match.objects.all())
    assert len(matches) == 3
    for match in matches:
        assert match.left_id < match.right_id and match.status == "pending" and not match.archived
        assert match.left_agency_id == match.right_agency_id == world.a.pk and match.entity_type == "person"
        assert match.features and "name" in match.explanation
    before = _rows()
    assert services.records_changed([p.pk for p in reversed(people)]) == 0  # the same records: the same rows
    assert services.records_changed([people[0].pk]) == 0
    assert _rows() == before


def test_a_match_across_agencies_is_one_row_naming_both_agencies(world):
    mine, theirs = factories.person(world.a, "Li Na Smuggler"), factories.person(world.b, "Na Li Smuggler")
    services.records_changed([mine.pk])  # indexed when written, before the other agency's record existed
    assert services.records_changed([theirs.pk]) == 1
    match = _pair(mine, theirs)
    assert {match.left_agency_id, match.right_agency_id} == {world.a.pk, world.b.pk}


def test_a_pending_match_is_withdrawn_when_its_pair_no_longer_matches_or_a_record_is_archived(world, investigator):
    a, b, c = _trio(world.a)
    services.records_changed([a.pk, b.pk, c.pk])
    entity_services.entity_update(entity=c, actor=investigator, data={"name": "Maria Gonzalez"})
    services.records_changed([c.pk])
    assert _pair(a, c).archived and _pair(b, c).archived and not _pair(a, b).archived
    assert _pair(a, c).score < 0.5  # scored again, below the threshold
    entity_services.entity_update(entity=c, actor=investigator, data={"name": "Zhang Wei Antimon"})
    services.records_changed([c.pk])
    assert not _pair(a, c).archived  # proposed again

    entity_services.entity_archive(entity=b, actor=investigator)
    services.records_changed([b.pk])
    assert _pair(a, b).archived and _pair(b, c).archived and not _pair(a, c).archived


def test_a_decided_pair_keeps_its_decision_whatever_its_new_score(world, investigator):
    a, b, c = _trio(world.a)
    services.records_changed([a.pk, b.pk, c.pk])
    services.match_decide(investigator, _pair(a, b), decision="rejected", note="father and son")
    services.match_decide(investigator, _pair(a, c), decision="confirmed")
    entity_services.entity_update(entity=a, actor=investigator, data={"name": "Maria Gonzalez"})
    services.records_changed([a.pk])
    assert (_pair(a, b).status, _pair(a, b).archived) == ("rejected", False)
    assert (_pair(a, c).status, _pair(a, c).archived) == ("confirmed", False)
    assert _pair(b, c).status == "pending"


def _score(a, b):
    from xref import matching

    (scored,) = matching.score_pairs([tuple(sorted([a.pk, b.pk]))])
    return scored.score


def test_a_pair_scoring_the_auto_confirm_threshold_is_confirmed_by_itself_and_audited(world, settings):
    a, b, c = _trio(world.a)
    settings.XREF_AUTO_CONFIRM_THRESHOLD = _score(a, b)  # the same tokens: the best of the three pairs
    assert _score(a, c) < settings.XREF_AUTO_CONFIRM_THRESHOLD
    services.records_changed([a.pk, b.pk, c.pk])
    auto = _pair(a, b)
    assert auto.status == "confirmed" and auto.decided_by is None and auto.decided_at is not None
    assert _pair(a, c).status == "pending"
    assert services.same_as([a.pk])[a.pk] == [{"type": "person", "id": str(b.pk), "name": b.name}]
    event = AuditEvent.objects.get(action="decision", object_id=str(auto.pk))
    assert event.changes["status"] == ["pending", "confirmed"]
    assert services.records_changed([a.pk, b.pk]) == 0  # once
    assert AuditEvent.objects.filter(action="decision").count() == 1


def test_without_an_auto_confirm_threshold_nothing_is_confirmed_by_itself(world, settings):
    settings.XREF_AUTO_CONFIRM_THRESHOLD = None
    a, b, c = _trio(world.a)
    services.records_changed([a.pk, b.pk, c.pk])
    assert set(Match.objects.values_list("status", flat=True)) == {"pending"}


def test_a_match_returned_to_pending_by_a_person_is_not_confirmed_again_by_itself(world, investigator, settings):
    a, b, _ = _trio(world.a)
    settings.XREF_AUTO_CONFIRM_THRESHOLD = _score(a, b)
    services.records_changed([a.pk, b.pk])
    assert _pair(a, b).status == "confirmed"
    services.match_decide(investigator, _pair(a, b), decision="pending")
    entity_services.entity_update(entity=a, actor=investigator, data={"notes": "seen in Tianjin"})
    services.records_changed([a.pk, b.pk])
    assert _pair(a, b).status == "pending"


@pytest.mark.django_db(transaction=True)
def test_two_workers_upserting_the_same_pairs_at_once_make_each_pair_once(world):
    people = [factories.person(world.a, f"Chen Jie Trader {i % 3}") for i in range(12)]
    ids = [p.pk for p in people]
    barrier, errors = threading.Barrier(2), []

    def worker(order):
        try:
            barrier.wait(10)
            with transaction.atomic():
                services.records_changed(order)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(o,)) for o in (ids, list(reversed(ids)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert Match.objects.count() == 66  # 12 * 11 / 2 pairs, each once
    assert services.records_changed(ids) == 0


# --- decisions and identities ------------------------------------------------------------------------------------


def test_confirmed_pairs_join_one_identity_transitively_and_an_undo_splits_it(world, investigator):
    a, b, c = _trio(world.a)
    services.records_changed([a.pk, b.pk, c.pk])
    services.match_decide(investigator, _pair(a, b), decision="confirmed")
    services.match_decide(investigator, _pair(b, c), decision="confirmed")
    same = services.same_as([a.pk, b.pk, c.pk])
    assert {ref["id"] for ref in same[a.pk]} == {str(b.pk), str(c.pk)}  # a ~ c through b
    assert IdentityMember.objects.values("cluster").distinct().count() == 1

    undone = services.match_decide(investigator, _pair(a, b), decision="pending", note="not so sure")
    assert undone.status == "pending" and undone.decided_by == investigator
    same = services.same_as([a.pk, b.pk, c.pk])
    assert same[a.pk] == [] and [ref["id"] for ref in same[b.pk]] == [str(c.pk)]
    assert not IdentityMember.objects.filter(entity=a).exists()


def test_same_as_is_one_query(world, investigator, django_assert_num_queries):
    a, b, c = _trio(world.a)
    services.records_changed([a.pk, b.pk, c.pk])
    services.match_decide(investigator, _pair(a, b), decision="confirmed")
    with django_assert_num_queries(1):
        same = services.same_as([a.pk, b.pk, c.pk])
    assert same[c.pk] == [] and len(same[a.pk]) == 1


def test_a_decision_is_audited_with_its_changes_and_a_repeat_writes_nothing(world, investigator):
    a, b, _ = _trio(world.a)
    services.records_changed([a.pk, b.pk])
    match = services.match_decide(investigator, _pair(a, b), decision="rejected", note="different fathers")
    assert (match.status, match.note, match.decided_by, match.version) == ("rejected", "different fathers",
                                                                          investigator, 2)
    event = AuditEvent.objects.get(action="decision")
    assert event.object_type == "match" and event.object_id == str(match.pk) and event.actor == "inv-a1"
    assert event.changes == {"status": ["pending", "rejected"], "note": ["", "different fathers"]}
    assert event.chain == str(world.a.pk)
    services.match_decide(investigator, match, decision="rejected", note="different fathers")
    assert AuditEvent.objects.filter(action="decision").count() == 1


@pytest.mark.parametrize("decision,note,field", [("accepted", "", "decision"), ("", "", "decision"),
                                                 (None, "", "decision"), ("rejected", 5, "note"),
                                                 ("rejected", "x" * 5001, "note")])
def test_a_bad_decision_is_refused_and_changes_nothing(world, investigator, decision, note, field):
    a, b, _ = _trio(world.a)
    services.records_changed([a.pk, b.pk])
    with pytest.raises(RuleViolation) as caught:
        services.match_decide(investigator, _pair(a, b), decision=decision, note=note)
    assert field in caught.value.errors
    assert _pair(a, b).status == "pending" and not AuditEvent.objects.filter(action="decision").exists()


def test_only_who_may_decide_a_match_decides_it(world, investigator):
    a, b, _ = _trio(world.a)
    services.records_changed([a.pk, b.pk])
    match = _pair(a, b)
    for user in (factories.user(world.a, "viewer"), factories.user(world.a, "auditor"),
                 factories.user(world.b, "supervisor")):
        with pytest.raises(PermissionDenied):
            services.match_decide(user, match, decision="confirmed")
    assert services.match_decide(factories.user(world.a, "analyst"), match, decision="confirmed").status == "confirmed"


def test_a_withdrawn_match_cannot_be_decided(world, investigator):
    a, b, _ = _trio(world.a)
    services.records_changed([a.pk, b.pk])
    entity_services.entity_archive(entity=b, actor=investigator)
    services.records_changed([b.pk])
    with pytest.raises(StateConflict):
        services.match_decide(investigator, _pair(a, b), decision="confirmed")


# --- full runs ---------------------------------------------------------------------------------------------------


def test_a_run_is_queued_through_the_outbox_and_audited(world, investigator):
    from core.models import OutboxMessage

    run = services.run_create(agency=world.a, user=investigator)
    assert run.status == "queued" and run.created_by == investigator
    row = OutboxMessage.objects.get(task="xref.run")
    assert row.kwargs == {"run_id": str(run.pk)} and row.sent_at is None  # sent once this transaction commits
    assert AuditEvent.objects.filter(action="create", object_type="xrefrun", object_id=str(run.pk)).exists()


def test_who_may_not_run_or_a_case_of_another_agency_is_refused(world, investigator):
    with pytest.raises(PermissionDenied):
        services.run_create(agency=world.a, user=factories.user(world.a, "viewer"))
    with pytest.raises(PermissionDenied):
        services.run_create(agency=world.b, user=investigator)
    with pytest.raises(RuleViolation) as caught:
        services.run_create(agency=world.a, user=investigator, case=factories.case(world.b))
    assert "case" in caught.value.errors
    assert not XrefRun.objects.exists()


def test_a_sync_run_scores_every_part_and_ends_with_its_counts(world):
    people = _trio(world.a)
    run = services.run_create(agency=world.a, sync=True)
    assert (run.status, run.progress, run.parts_done, run.parts) == ("succeeded", 1.0, run.parts, 16)
    assert sorted(run.done_parts) == list(range(16))
    assert run.started_at and run.finished_at and run.started_at <= run.finished_at
    assert run.candidates >= 3 and run.matches >= 3
    assert Match.objects.filter(run=run).count() == 3
    assert set(Match.objects.values_list("left_id", flat=True)) <= {p.pk for p in people}


def test_a_part_delivered_twice_counts_once(world, settings):
    settings.XREF_RUN_PARTS = 2
    _trio(world.a)
    run = services.run_create(agency=world.a)
    assert services.run_start(run.pk, enqueue=False) is True
    assert services.run_start(run.pk, enqueue=False) is False  # a second delivery: split already
    assert services.run_part(run.pk, 0) is True
    assert services.run_part(run.pk, 0) is False
    run.refresh_from_db()
    assert (run.parts_done, run.progress, run.status) == (1, 0.5, "running")
    assert services.run_part(run.pk, 1) is True
    run.refresh_from_db()
    assert (run.parts_done, run.progress, run.status) == (2, 1.0, "succeeded")
    assert services.run_part(run.pk, 1) is False


def test_a_rejected_pair_stays_rejected_after_a_full_run(world, investigator):
    a, b, c = _trio(world.a)
    services.records_changed([a.pk, b.pk, c.pk])
    services.match_decide(investigator, _pair(a, b), decision="rejected")
    services.run_create(agency=world.a, sync=True)
    assert _pair(a, b).status == "rejected" and not _pair(a, b).archived
    assert Match.objects.count() == 3


def test_a_case_run_covers_the_case_parties(world):
    a, b, _ = _trio(world.a)
    case = factories.case(world.a, world.a1)
    factories.party(case, a)
    factories.party(case, b)
    run = services.run_create(agency=world.a, case=case, sync=True)
    assert run.status == "succeeded"
    assert Match.objects.filter(left_id__in=[a.pk, b.pk], right_id__in=[a.pk, b.pk]).count() == 1


def test_a_failing_part_fails_the_run_with_its_error(world, monkeypatch):
    from xref import matching

    _trio(world.a)

    def broken(*args, **kwargs):
        raise ValueError("the engine broke")

    monkeypatch.setattr(matching, "full_candidates", broken)
    with pytest.raises(ValueError):
        services.run_create(agency=world.a, sync=True)
    run = XrefRun.objects.get()
    assert run.status == "failed" and "the engine broke" in run.error and run.finished_at is not None


# --- the outbox's task ----------------------------------------------------------------------------------------------


def test_the_outbox_task_cross_references_new_versions_once_and_the_entities_a_link_or_shipment_names(world):
    from core.outbox import handle_records_changed
    from entities.models import Link
    from shipments.models import Shipment

    a, b, _ = _trio(world.a)
    other = factories.organization(world.a, "Grand Harvest Ltd")
    assert handle_records_changed("entities.person", [str(a.pk)]) == 1
    assert not Match.objects.exists()  # nothing else indexed yet
    assert handle_records_changed("entities.person", [str(b.pk)]) == 1
    assert Match.objects.count() == 1
    Match.objects.all().delete()
    assert handle_records_changed("entities.person", [str(b.pk)]) == 0  # a version handled: no work again
    assert not Match.objects.exists()

    twin = factories.person(world.a, a.name)  # not indexed: only what names it can make it matched

    def twin_matches():
        return Match.objects.filter(Q(left=twin) | Q(right=twin))

    link = Link.objects.create(agency=world.a, kind="employment", source=twin, target=other)
    assert handle_records_changed("entities.link", [str(link.pk)]) == 1
    assert twin_matches().filter(Q(left=a) | Q(right=a)).exists()
    twin_matches().delete()
    shipment = Shipment.objects.create(agency=world.a, reference="S-1", consignee=twin, consignor=other)
    assert handle_records_changed("shipments.shipment", [str(shipment.pk)]) == 1
    assert twin_matches().filter(Q(left=a) | Q(right=a)).exists()  # cross-referenced again


def test_the_outbox_task_leaves_what_it_could_not_do_in_its_time_to_a_new_task(world, settings, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    from core.models import HandledVersion, OutboxMessage
    from core.outbox import handle_records_changed

    settings.XREF_BATCH = 2
    people = sorted((factories.person(world.a, f"Batch Person {i}") for i in range(5)), key=lambda p: p.pk)
    real, calls = services.records_changed, []

    def slow_second_batch(ids):
        calls.append(ids)
        if len(calls) == 2:
            raise SoftTimeLimitExceeded()  # what Celery raises in the task at its soft time limit
        return real(ids)

    monkeypatch.setattr(services, "records_changed", slow_second_batch)
    assert handle_records_changed("entities.person", [str(p.pk) for p in people]) == 2
    assert set(HandledVersion.objects.values_list("record_id", flat=True)) == {str(p.pk) for p in people[:2]}
    (rest,) = OutboxMessage.objects.filter(task="xref.records_changed")
    assert rest.kwargs == {"model": "entities.person", "ids": [str(p.pk) for p in people[2:]]}

    calls[:] = ["earlier"]  # the next call is the second: too slow
    HandledVersion.objects.all().delete()
    with pytest.raises(SoftTimeLimitExceeded):  # the first batch already too slow: no endless relay
        handle_records_changed("entities.person", [str(p.pk) for p in people])
    assert OutboxMessage.objects.filter(task="xref.records_changed").count() == 1


# --- how many tasks the writes enqueue -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_import_enqueues_one_cross_referencing_task_a_batch_not_one_a_row(world):
    from django.core.files.base import ContentFile

    from core.models import OutboxMessage
    from imports.services import BATCH_SIZE, job_create, run_job

    from .test_imports import persons_csv

    rows = [{"source_id": f"r{i}", "name": f"Person {i} Example"} for i in range(2 * BATCH_SIZE + 10)]
    job = job_create(agency=world.a, actor=None, upload=ContentFile(persons_csv(rows), name="p.csv"),
                     kind="persons", run=False)
    assert run_job(job.pk).status == "succeeded"
    tasks = OutboxMessage.objects.filter(task="xref.records_changed")
    assert tasks.count() == 3  # one a batch of the import
    assert sorted(len(task.kwargs["ids"]) for task in tasks) == [10, BATCH_SIZE, BATCH_SIZE]


def test_the_demo_loader_enqueues_one_cross_referencing_task_a_model(db):
    from django.core.management import call_command

    from core.models import OutboxMessage

    call_command("load_demo", verbosity=0)
    tasks = OutboxMessage.objects.filter(task="xref.records_changed")
    models = sorted(task.kwargs["model"] for task in tasks)
    assert len(models) == len(set(models)) and {"entities.person", "entities.organization"} <= set(models)
    assert sum(len(task.kwargs["ids"]) for task in tasks.filter(kwargs__model="entities.person")) == 13


@pytest.mark.django_db(transaction=True)
def test_an_ftm_import_enqueues_one_cross_referencing_task_a_model_and_batch(world):
    from core.models import OutboxMessage
    from imports.services import run_job

    from .test_imports_data import FTM, _ftm_job

    job = run_job(_ftm_job(world.a, FTM.read_bytes()).pk)
    assert job.status == "succeeded", job.error
    tasks = OutboxMessage.objects.filter(task="xref.records_changed")
    models = [task.kwargs["model"] for task in tasks]
    assert len(models) == len(set(models)) and {"entities.person", "entities.organization"} <= set(models)
    assert sum(len(task.kwargs["ids"]) for task in tasks if task.kwargs["model"] != "entities.link") == (
        Entity.objects.filter(agency=world.a).count())


def test_a_part_scores_with_the_model_its_run_trained_in_another_process(world):
    """A worker process caches an agency's model; the run's training in another process stores a new one; the
    parts this process then runs score with the new one, not the cached."""
    from xref.matching import model
    from xref.models import XrefModel

    _trio(world.a)
    run = services.run_create(agency=world.a)
    assert services.run_start(run.pk, enqueue=False) is True  # trains, here
    trained = model.params_for(world.a.pk, "person")  # and this process caches what it stored
    row = XrefModel.objects.get(agency=world.a, entity_type="person")
    # "another process" trains again: the stored prior moves, this process's cache does not know
    XrefModel.objects.filter(pk=row.pk).update(params={**row.params, "prior": trained.prior / 2})
    services.run_part(run.pk, 0)
    assert model.params_for(world.a.pk, "person").prior == pytest.approx(trained.prior / 2)


def test_the_sweep_sends_again_only_the_steps_of_runs_no_worker_is_on(world, settings):
    """A run queued or running whose heartbeat (updated_at) is older than XREF_RUN_STALE_SECONDS gets its
    xref.run again when it was not split yet, else its parts not done; live and finished runs are left alone.
    (Its rows wait in the outbox: nothing commits here. With a killed worker: test_faults.py.)"""
    import datetime

    from django.utils import timezone

    from core.models import OutboxMessage

    settings.XREF_RUN_STALE_SECONDS = 60
    old = timezone.now() - datetime.timedelta(seconds=61)
    unsplit = factories.run(world.a, status="running")
    split = factories.run(world.a, status="running", parts=4, parts_done=2, done_parts=[0, 2])
    lost = factories.run(world.a, status="queued")
    live = factories.run(world.a, status="running", parts=4)
    finished = [factories.run(world.a, status=status) for status in ("succeeded", "failed")]
    XrefRun.objects.filter(pk__in=[unsplit.pk, split.pk, lost.pk, *(run.pk for run in finished)]).update(
        updated_at=old)

    assert sorted(services.resume_stale()) == sorted(str(run.pk) for run in (unsplit, split, lost))
    sent = sorted((row.task, row.kwargs.get("run_id"), row.kwargs.get("part"))
                  for row in OutboxMessage.objects.filter(task__startswith="xref.run"))
    assert sent == sorted([("xref.run", str(unsplit.pk), None), ("xref.run", str(lost.pk), None),
                           ("xref.run_part", str(split.pk), 1), ("xref.run_part", str(split.pk), 3)])
    assert services.resume_stale() == []  # sent again just now: not again before another stale interval
    assert OutboxMessage.objects.filter(task__startswith="xref.run").count() == 4
    assert live.pk not in {row.kwargs["run_id"] for row in OutboxMessage.objects.filter(task__startswith="xref.")}
    assert settings.CELERY_BEAT_SCHEDULE["resume-stale-xref-runs"] == {"task": "xref.resume_stale", "schedule": 60}
