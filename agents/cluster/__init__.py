"""Cluster mode: several daemons share one deployment on a PostgreSQL store.

`lease.py` holds the leases (one per agent: owner, epoch, expiry by the database
clock) and the daemon's local view of them; `fence.py` the check every state write of
an agent commits under (installed on the store's engine, see `config/fencing.py`);
`node.py` the lease loop and the hand-over to the runtime's take-over; `status.py`
what `status` and `cluster status` read.
"""
