"""Helper of tests/cluster_relay.rs, run by Debian's /usr/bin/python3 with graphite-carbon.

  carbon_ring.py REPLICATION DESTINATIONS METRIC...

DESTINATIONS is carbon.conf's DESTINATIONS, comma-separated (`127.0.0.1:2103:a,...`). The
placement comes from carbon's own code, set up as carbon-relay sets it up (service.py's
setupRelayProcessor): RELAY_METHOD = consistent-hashing, the router class from carbon's plugin
registry, every destination parsed by carbon.util.parseDestinations and added in order.
DIVERSE_REPLICAS is off: carbon-c-relay picks distinct members, not distinct hosts, and every
test node is on 127.0.0.1.

Prints, one per line:
  ring POSITION INSTANCE      every entry of carbon's hash ring, in ring order
  shifted N                   ring entries carbon moved off their hash (a collision: carbon
                              moves the later entry to the next free position, carbon-c-relay
                              does not, so its ring differs there)
  metric NAME INSTANCE...     the instances carbon's router sends NAME to, in order
"""
import sys

from carbon import util
from carbon.conf import settings
from carbon.routers import DatapointRouter

replication, destinations, metrics = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3:]

settings.RELAY_METHOD = "consistent-hashing"
settings.REPLICATION_FACTOR = replication
settings.DIVERSE_REPLICAS = False
settings.DESTINATIONS = destinations

router = DatapointRouter.plugins[settings.RELAY_METHOD](settings)
for destination in util.parseDestinations(settings.DESTINATIONS):
    router.addDestination(destination)

ring = router.ring
for position, (_server, instance) in ring.ring:
    print("ring", position, instance)

# The positions the replica keys hash to, before carbon's collision shift (the key format is
# hashing.py's add_node).
unshifted = sorted(
    ring.compute_ring_position("%s:%d" % (node, i))
    for node in ring.nodes
    for i in range(ring.replica_count)
)
print("shifted", sum(1 for a, (b, _) in zip(unshifted, ring.ring) if a != b))

for metric in metrics:
    instances = [instance for (_server, _port, instance) in router.getDestinations(metric)]
    print("metric", metric, " ".join(instances))
