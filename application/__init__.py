"""The use cases: one module per bounded context, each use case a short method that loads the
aggregates it needs from the event store, asks the domain to decide, and saves.

The layer talks to ports (:mod:`application.ports`), never to psycopg, Kafka or FastAPI, so
every service runs in memory in the fast tests (the eventsourcing library's POPO persistence)
and on PostgreSQL in production (the adapters in ``infra/``).

- ``registry``: households and persons; ``surveys``: questionnaires and responses;
  ``eligibility``: rule sets, determinations, overrides and appeals; ``housing``: settlements,
  units and lottery rounds; ``relocation``: offers, consent, convoys and the steps of a move;
  ``reintegration``: the follow-up after return; ``audit``: a case's history and state as of a
  moment, and the re-runs of decisions and lotteries; ``legacy_import``: loading the existing
  registry; ``demo``: reproducible demonstration data.
- ``store``: the event store on the eventsourcing library (the port's implementation in memory
  and the base of the PostgreSQL one); ``ports``: what the use cases need from outside.
"""
