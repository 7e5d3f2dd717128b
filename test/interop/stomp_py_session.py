"""A stomp.py (the talk's publisher) session against a STOMP broker, driven by the interop test.

Usage: /usr/bin/python3 stomp_py_session.py PORT
Prints one JSON object: what each step observed. The test asserts on it.
"""
import json
import sys
import threading
import time

import stomp

PORT = int(sys.argv[1])


class Collector(stomp.ConnectionListener):
    """Keeps every MESSAGE, RECEIPT and ERROR, and wakes up whoever waits for one."""

    def __init__(self):
        self.messages = []
        self.receipts = []
        self.errors = []
        self.changed = threading.Condition()

    def on_message(self, frame):
        with self.changed:
            self.messages.append(frame)
            self.changed.notify_all()

    def on_receipt(self, frame):
        with self.changed:
            self.receipts.append(frame.headers.get('receipt-id'))
            self.changed.notify_all()

    def on_error(self, frame):
        with self.changed:
            self.errors.append(frame.headers.get('message'))
            self.changed.notify_all()

    def wait_for(self, predicate, what, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError('stomp.py waited in vain for ' + what)
                self.changed.wait(remaining)

    def message(self, index):
        self.wait_for(lambda: len(self.messages) > index, 'message %d' % index)
        return self.messages[index]

    def receipt(self, receipt_id):
        self.wait_for(lambda: receipt_id in self.receipts, 'receipt ' + receipt_id)


def connection():
    conn = stomp.Connection12([('127.0.0.1', PORT)], heartbeats=(0, 0))
    listener = Collector()
    conn.set_listener('collector', listener)
    conn.connect('guest', 'guest', wait=True)
    return conn, listener


result = {}

# Topics: one publisher, two subscribers.
sub_a, got_a = connection()
sub_b, got_b = connection()
pub, pub_events = connection()
sub_a.subscribe('/games/1/status', id='a', receipt='sub-a')
sub_b.subscribe('/games/1/status', id='b', receipt='sub-b')
got_a.receipt('sub-a')
got_b.receipt('sub-b')
pub.send('/games/1/status', '{"state": "question"}', content_type='application/json', receipt='sent')
pub_events.receipt('sent')
message = got_a.message(0)
result['topic'] = {
    'a': got_a.message(0).body,
    'b': got_b.message(0).body,
    'content_type': message.headers.get('content-type'),
    'destination': message.headers.get('destination'),
    'has_offset': 'x-perigee-offset' in message.headers,
}

# Queues with client-individual ack and NACK.
worker, got_w = connection()
worker.subscribe('/queue/jobs', id='w', ack='client-individual', receipt='sub-w')
got_w.receipt('sub-w')
pub.send('/queue/jobs', 'job-1', receipt='job-1')
pub.send('/queue/jobs', 'job-2', receipt='job-2')
pub_events.receipt('job-2')
first = got_w.message(0)
second = got_w.message(1)
worker.nack(first.headers['ack'], receipt='nacked')
got_w.receipt('nacked')
redelivered = got_w.message(2)
worker.ack(second.headers['ack'])
worker.ack(redelivered.headers['ack'], receipt='acked')
got_w.receipt('acked')
result['queue'] = {
    'first': first.body,
    'second': second.body,
    'redelivered': redelivered.body,
    'redelivered_flag': redelivered.headers.get('redelivered'),
}

# Transactions: an aborted one leaves nothing, a committed one delivers.
watcher, got_t = connection()
watcher.subscribe('/tx/out', id='t', receipt='sub-t')
got_t.receipt('sub-t')
tx = pub.begin()
pub.send('/tx/out', 'aborted', transaction=tx)
pub.abort(tx)
tx = pub.begin()
pub.send('/tx/out', 'committed', transaction=tx)
pub.commit(tx, receipt='committed')
pub_events.receipt('committed')
result['transaction'] = got_t.message(0).body

# Receipts on DISCONNECT, and errors.
pub.send('/games/1/status', 'x', headers={'receipt': 'plain'})
pub_events.receipt('plain')
result['errors'] = got_a.errors + got_b.errors + pub_events.errors + got_w.errors + got_t.errors
for conn in (sub_a, sub_b, pub, worker, watcher):
    conn.disconnect(receipt='bye')

print(json.dumps(result))
