"""Dev and bench tools that ship with the product but never run in a serving role.

* :mod:`services.devtools.fake_sendgrid`: a fake SendGrid v3 API over real HTTP (with the
  rules in :mod:`services.devtools.sendgrid_rules`), for ``winwin bench dispatch`` and the
  integration tests;
* :mod:`services.devtools.kafka_launcher`: a real single-node Kafka on loopback, for
  ``winwin bench scaleout --real-kafka`` and the test fixtures. Its jars are not in the
  wheel: it needs a checkout (``make kafka-jars``) or ``WINWIN_KAFKA_HOME``.

The tests import them (``tests/fakes/sendgrid_server.py`` and ``tests/kafka_cluster.py``
are thin re-exports); the product never imports ``tests``.
"""
