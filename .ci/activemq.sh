#!/usr/bin/env bash
# Starts a private ActiveMQ 5.17 (Debian package `activemq`) that speaks only STOMP over TCP on
# 127.0.0.1:61633, for the relay's conformance tests. Idempotent: if that broker already answers a
# STOMP CONNECT, nothing is done. No systemd: the JVM is started directly and daemonized.
#
#   bash .ci/activemq.sh          start (or check) the broker
#   bash .ci/activemq.sh stop     stop the broker this script started
#
# The instance lives in $PERIGEE_ACTIVEMQ_DIR (default /var/lib/perigee-activemq):
#   conf/activemq.xml, conf/log4j.properties  (rewritten at every start)
#   data/activemq.log, data/console.log       (broker log, JVM stdout/stderr)
#   activemq.pid
# The package's own "main" instance (/etc/activemq, OpenWire on 61616) is never used or touched.
#
# Broker: non-persistent (every start begins with empty queues), no OpenWire, no JMX, no web
# console (Debian doesn't ship it), no advisory topics. Logins: admin/admin and guest/guest;
# a wrong or missing login gets an ERROR frame.
set -euo pipefail

PORT=${PERIGEE_ACTIVEMQ_PORT:-61633}
BASE=${PERIGEE_ACTIVEMQ_DIR:-/var/lib/perigee-activemq}
HOME_DIR=/usr/share/activemq
PIDFILE=$BASE/activemq.pid
TIMEOUT=120

# Sends CONNECT as admin and prints the first frame that comes back (empty if none in 5 s).
# Exit status: 1 when nothing accepts a TCP connection on the port, else 0.
stomp_probe() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
    printf 'CONNECT\naccept-version:1.2\nhost:localhost\nlogin:admin\npasscode:admin\nheart-beat:0,0\n\n\0' >&3
    reply=
    IFS= read -r -t 5 -d '' reply <&3 || true
    printf 'DISCONNECT\n\n\0' >&3 || true
    printf '%s' "$reply"
  ) 2>/dev/null
}

# True when the probe's reply is ActiveMQ's CONNECTED.
is_our_broker() {
  local reply
  reply=$(stomp_probe) || return 1
  [[ $reply == CONNECTED* && $reply == *server:ActiveMQ/* ]]
}

# Pid of the broker this script started, if that process is still alive.
running_pid() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx -- "-Dactivemq.base=$BASE" || return 1
  echo "$pid"
}

if [ "${1:-}" = stop ]; then
  if pid=$(running_pid); then
    kill "$pid"
    for _ in $(seq 1 60); do [ -d "/proc/$pid" ] || break; sleep 0.5; done
    [ -d "/proc/$pid" ] && kill -9 "$pid"
    echo "ActiveMQ stopped (pid $pid)"
  else
    echo "ActiveMQ is not running"
  fi
  rm -f "$PIDFILE"
  exit 0
fi

ready() { echo "ActiveMQ STOMP listening on 127.0.0.1:$PORT"; }

# One start at a time (two concurrent runs would otherwise launch two JVMs). The JVM must not
# inherit this descriptor, or it would hold the lock for its whole life.
mkdir -p "$BASE"
exec 9>"$BASE/.lock"
flock -w $((TIMEOUT + 30)) 9 || { echo "activemq.sh: another activemq.sh holds $BASE/.lock" >&2; exit 1; }

# Already up: nothing to do.
if is_our_broker; then ready; exit 0; fi

pid=$(running_pid) || pid=
if [ -z "$pid" ]; then
  # Nothing of ours runs. Anything that accepts connections on the port is someone else's.
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "activemq.sh: 127.0.0.1:$PORT is already taken by another program (not Perigee's ActiveMQ); free it and rerun" >&2
    exit 1
  fi

  # (dpkg -s succeeds for a removed package whose config files remain: test the jar itself.)
  if [ ! -e "$HOME_DIR/bin/activemq.jar" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt_log=$(mktemp)
    if ! apt-get install -y -qq --no-install-recommends activemq >"$apt_log" 2>&1; then
      apt-get update -qq >>"$apt_log" 2>&1 || true
      if ! apt-get install -y -qq --no-install-recommends activemq >>"$apt_log" 2>&1; then
        echo "activemq.sh: apt-get install activemq failed:" >&2
        tail -n 20 "$apt_log" >&2
        exit 1
      fi
    fi
    rm -f "$apt_log"
  fi
  JAVA=$(command -v java) || { echo "activemq.sh: java not found (the activemq package should have pulled it in)" >&2; exit 1; }

  mkdir -p "$BASE/conf" "$BASE/data" "$BASE/tmp"
  cat >"$BASE/conf/activemq.xml" <<EOF
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
                           http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="perigee"
          persistent="false" useJmx="false" advisorySupport="false" schedulerSupport="false"
          dataDirectory="$BASE/data" tmpDataDirectory="$BASE/tmp">
    <managementContext><managementContext createConnector="false"/></managementContext>
    <plugins>
      <simpleAuthenticationPlugin anonymousAccessAllowed="false">
        <users>
          <authenticationUser username="admin" password="admin" groups="admins,users"/>
          <authenticationUser username="guest" password="guest" groups="users"/>
        </users>
      </simpleAuthenticationPlugin>
    </plugins>
    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage limit="64 mb"/></memoryUsage>
        <storeUsage><storeUsage limit="1 gb"/></storeUsage>
        <tempUsage><tempUsage limit="1 gb"/></tempUsage>
      </systemUsage>
    </systemUsage>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:$PORT"/>
    </transportConnectors>
  </broker>
</beans>
EOF
  cat >"$BASE/conf/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$BASE/data/activemq.log
log4j.appender.file.MaxFileSize=1MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n
EOF

  # What the package's /usr/bin/activemq launcher would run (its --add-opens flags and -D
  # properties), without its switch to the activemq user and with a 256 MB heap instead of its
  # 512 MB. setsid puts the JVM in a session of its own, so it outlives this script.
  setsid "$JAVA" -Xms64m -Xmx256m -XX:+UseSerialGC -Djava.net.preferIPv4Stack=true \
    --add-reads=java.xml=java.logging \
    --add-opens java.base/java.security=ALL-UNNAMED \
    --add-opens java.base/java.net=ALL-UNNAMED \
    --add-opens java.base/java.lang=ALL-UNNAMED \
    --add-opens java.base/java.util=ALL-UNNAMED \
    --add-opens java.naming/javax.naming.spi=ALL-UNNAMED \
    --add-opens java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED \
    --add-opens java.base/java.util.concurrent=ALL-UNNAMED \
    --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED \
    -Dlog4j.configuration="file:$BASE/conf/log4j.properties" \
    -Dactivemq.classpath="$BASE/conf" \
    -Dactivemq.home="$HOME_DIR" \
    -Dactivemq.base="$BASE" \
    -Dactivemq.conf="$BASE/conf" \
    -Dactivemq.data="$BASE/data" \
    -jar "$HOME_DIR/bin/activemq.jar" start "xbean:file:$BASE/conf/activemq.xml" \
    </dev/null >"$BASE/data/console.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
fi

# Wait (ours is starting, or was just started) until a STOMP CONNECT gets CONNECTED.
deadline=$((SECONDS + TIMEOUT))
until is_our_broker; do
  if ! [ -d "/proc/$pid" ]; then
    if grep -q 'Address already in use' "$BASE/data/console.log" 2>/dev/null; then
      echo "activemq.sh: 127.0.0.1:$PORT is already taken by another program (ActiveMQ could not bind it); free it and rerun" >&2
    else
      echo "activemq.sh: ActiveMQ exited during startup; see $BASE/data/console.log. Last errors:" >&2
      grep -E 'ERROR|Error|Exception|Caused by' "$BASE/data/console.log" 2>/dev/null | tail -n 5 >&2 || true
    fi
    rm -f "$PIDFILE"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "activemq.sh: ActiveMQ (pid $pid) gave no STOMP CONNECTED on 127.0.0.1:$PORT within ${TIMEOUT}s; see $BASE/data/activemq.log" >&2
    exit 1
  fi
  sleep 0.5
done
ready
