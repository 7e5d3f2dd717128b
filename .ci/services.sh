#!/usr/bin/env bash
# Starts the real brokers the tests talk to. Idempotent: safe to run again in a session.
set -euo pipefail

# RabbitMQ's STOMP plugin on 61623: 61613 is Perigee's own default port.
# Listener settings are read only at boot, so a changed config means a restart.
rabbit_conf=/etc/rabbitmq/rabbitmq.conf
wanted=$'listeners.tcp.local = 127.0.0.1:5672\nstomp.listeners.tcp.1 = 127.0.0.1:61623'
node_pid_file=/var/lib/rabbitmq/mnesia/rabbit@localhost.pid
if [ -f /etc/rabbitmq/rabbitmq-env.conf ]; then
  node_name=$(sed -n 's/^NODENAME=//p' /etc/rabbitmq/rabbitmq-env.conf)
  [ -n "$node_name" ] && node_pid_file=/var/lib/rabbitmq/mnesia/$node_name.pid
fi
if [ "$(cat "$rabbit_conf" 2>/dev/null)" != "$wanted" ] || ! rabbitmq-plugins is_enabled rabbitmq_stomp >/dev/null 2>&1 \
  || ! (exec 3<>/dev/tcp/127.0.0.1/61623) 2>/dev/null; then
  printf '%s\n' "$wanted" > "$rabbit_conf"
  rabbitmqctl stop >/dev/null 2>&1 || true
  rabbitmq-plugins enable --offline rabbitmq_stomp >/dev/null
  rabbitmq-server -detached
  rabbitmqctl wait --timeout 120 "$node_pid_file" >/dev/null
fi
echo "RabbitMQ STOMP listening on 127.0.0.1:61623"
