// The game pages (host and player): render the state the server embedded in the page, then follow
// the game live. The server owns the clock; this page only counts down to the server's deadline,
// using the server's time as Perigee estimates it, so a wrong device clock does not matter.
(function () {
  'use strict';

  const page = JSON.parse(document.getElementById('quiz-page').textContent);
  const settings = JSON.parse(document.getElementById('perigee-settings').textContent);
  const root = document.getElementById('game');
  const connection = document.getElementById('connection');
  const isHost = page.role === 'host';
  const SHAPES = ['▲', '◆', '●', '■'];
  const COLORS = ['red', 'blue', 'yellow', 'green'];

  // Until Perigee has measured the server's clock, the page's own render time is the estimate.
  const renderOffset = page.serverTime - Date.now();
  let connected = false;
  let status = page.status;
  let players = page.players;
  let myAnswer = page.myAnswer || null;
  // The host's two controls, start and end: a request on its way keeps its button disabled (a
  // double click sends one), and on success the next status replaces the button.
  const hostRequests = {
    start: { pending: false, error: '' },
    end: { pending: false, error: '' },
  };
  let countdownTimer = 0;

  // Delivery delays, server publish to this page's update, for the load test to read.
  window.quizLatencies = [];

  const query = new URLSearchParams(location.search);
  const options = {};
  if (query.get('transports')) options.transports = query.get('transports').split(',');
  const client = Perigee.connect(settings.url, options);
  window.quizClient = client;

  function serverNow() {
    return connected ? client.serverNow() : Date.now() + renderOffset;
  }

  client.on('state', function (change) {
    connected = connected || change.state === 'open';
    connection.dataset.state = change.state;
    connection.textContent =
      change.state === 'open'
        ? 'Live'
        : change.state === 'closed'
          ? 'Offline'
          : change.state === 'reconnecting'
            ? 'Reconnecting…'
            : 'Connecting…';
  });

  client.subscribe(
    page.statusDestination,
    function (message) {
      const next = message.json();
      window.quizLatencies.push(client.serverNow() - next.publishedAt);
      // A new question clears the last answer; the reveal of the same question keeps it.
      if (next.state === 'question' && myAnswer && myAnswer.index !== next.index) myAnswer = null;
      status = next;
      render();
    },
    {
      // The page was rendered at this position: what happened since comes first, nothing twice.
      since: page.position,
      onRecovery: function (recovered) {
        // The server could not replay what this page missed: the page itself is stale.
        if (!recovered) location.reload();
      },
    },
  );
  client.subscribe(
    page.playersDestination,
    function (message) {
      players = message.json().players;
      if (status.state === 'lobby') render();
    },
    {
      // As for the status: a player who joined between the render and this subscription is
      // replayed (without it the host would never list them, nor could start with them).
      since: page.playersPosition,
      onRecovery: function (recovered) {
        if (!recovered) location.reload();
      },
    },
  );

  function element(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const name in attributes || {}) {
      if (name === 'text') node.textContent = attributes[name];
      else if (name === 'onclick') node.addEventListener('click', attributes[name]);
      // Through the CSSOM, not the attribute: the page's Content-Security-Policy forbids inline styles.
      else if (name === 'width') node.style.width = attributes[name];
      else node.setAttribute(name, attributes[name]);
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  // Whole seconds to the deadline, never more than the question allows (a clock estimate that
  // lags the server's by a few hundred ms must not show 11 on a 10-second question).
  function secondsLeft() {
    const total = Math.ceil((status.deadline - status.startedAt) / 1000);
    return Math.max(0, Math.min(total, Math.ceil((status.deadline - serverNow()) / 1000)));
  }

  function progress(text) {
    return element('p', { class: 'progress', text: text });
  }

  function scoreboard(list, title) {
    const rows = list.map(function (entry, rank) {
      const mine = entry.id === page.playerId;
      return element('li', { class: mine ? 'me' : '' }, [
        element('span', { class: 'rank', text: String(rank + 1) }),
        element('span', { class: 'name', text: entry.nickname + (mine ? ' (you)' : '') }),
        element('span', { class: 'points', text: entry.score + ' pts' }),
      ]);
    });
    return element('section', { class: 'scoreboard', 'aria-label': title }, [
      element('h3', { text: title }),
      element('ol', {}, rows),
    ]);
  }

  // Each player's outcome on this question, for the host's screen.
  function results(list) {
    return element('section', { class: 'results', 'aria-label': 'Answers' }, [
      element('h3', { text: 'Answers' }),
      element(
        'ul',
        {},
        list.map(function (result) {
          const outcome = result.choice === null ? 'none' : result.correct ? 'right' : 'wrong';
          return element('li', { class: outcome }, [
            element('span', {
              class: 'mark',
              'aria-hidden': 'true',
              text: outcome === 'right' ? '✓' : outcome === 'wrong' ? '✗' : '–',
            }),
            element('span', { class: 'name', text: result.nickname }),
            element('span', {
              class: 'outcome',
              text: outcome === 'right' ? 'Right' : outcome === 'wrong' ? 'Wrong' : 'No answer',
            }),
            element('span', { class: 'points', text: '+' + result.points }),
          ]);
        }),
      ),
    ]);
  }

  function playerList() {
    return element('section', { class: 'players', 'aria-label': 'Players' }, [
      element('h2', { text: players.length === 1 ? '1 player' : players.length + ' players' }),
      players.length === 0
        ? element('p', { class: 'muted', text: 'Waiting for players to join…' })
        : element(
            'ul',
            { class: 'chips' },
            players.map(function (player) {
              return element('li', {
                class: player.id === page.playerId ? 'me' : '',
                text: player.nickname,
              });
            }),
          ),
    ]);
  }

  function renderLobby() {
    if (isHost) {
      const start = element('button', {
        class: 'button big',
        id: 'start',
        text: hostRequests.start.pending ? 'Starting…' : 'Start the game',
        onclick: startGame,
      });
      if (players.length === 0 || hostRequests.start.pending) start.setAttribute('disabled', '');
      return [
        element('section', { class: 'lobby-code' }, [
          element('p', { text: 'Game code' }),
          element('p', { class: 'big-code', text: page.code }),
        ]),
        playerList(),
        element('div', { class: 'actions' }, [start, errorLine(hostRequests.start.error)]),
      ];
    }
    return [
      element('section', { class: 'waiting' }, [
        element('h2', { text: 'You are in!' }),
        element('p', { text: 'Waiting for the host to start the game…' }),
      ]),
      playerList(),
    ];
  }

  function renderQuestion() {
    const question = status.question;
    const total = Math.max(1, status.deadline - status.startedAt);
    const left = secondsLeft();
    const bar = element('div', { class: 'timer-bar', 'aria-hidden': 'true' }, [
      element('div', {
        class: 'timer-fill',
        width: Math.max(0, Math.min(100, ((status.deadline - serverNow()) / total) * 100)) + '%',
      }),
    ]);
    const answeredText = status.answered + ' of ' + status.players + ' answered';
    const locked = !isHost && myAnswer;
    const choices = question.choices.map(function (choice, index) {
      // A refused answer (too late, say) is not shown as the player's pick.
      const picked = locked && !myAnswer.error && myAnswer.choice === index;
      const face = [
        element('span', { class: 'shape', 'aria-hidden': 'true', text: SHAPES[index] }),
        element('span', { class: 'label', text: choice }),
        picked ? element('span', { class: 'badge', text: 'Your answer' }) : null,
      ];
      // The host's screen shows the choices for everyone to read; only players press them.
      if (isHost) return element('li', { class: 'choice ' + COLORS[index] }, face);
      const attributes = {
        class: 'choice ' + COLORS[index] + (picked ? ' picked' : locked ? ' other' : ''),
        type: 'button',
        'data-choice': String(index),
      };
      if (locked || left === 0) attributes.disabled = '';
      const button = element('button', attributes, face);
      button.addEventListener('click', function () {
        answer(index);
      });
      return button;
    });
    const parts = [
      progress('Question ' + (status.index + 1) + ' of ' + status.total),
      element('h2', { class: 'question-text', text: question.text }),
      element('div', { class: 'clock' + (left <= 3 ? ' low' : '') }, [
        element('p', { class: 'time' }, [
          element('span', { class: 'seconds', id: 'seconds', text: String(left) }),
          element('span', { class: 'unit', text: left === 1 ? 'second left' : 'seconds left' }),
        ]),
        bar,
      ]),
    ];
    if (!isHost && !myAnswer && left > 0)
      parts.push(element('p', { class: 'prompt', text: 'Pick your answer:' }));
    parts.push(element(isHost ? 'ul' : 'div', { class: 'choices' }, choices));
    parts.push(element('p', { class: 'answered', id: 'answered', text: answeredText }));
    if (locked && !myAnswer.error) {
      parts.push(
        element('p', { class: 'notice locked' }, [
          element('span', { class: 'icon', 'aria-hidden': 'true', text: '✓' }),
          element('span', { text: 'Answer locked in. Waiting for the others…' }),
        ]),
      );
    } else if (!isHost && left === 0) {
      parts.push(
        element('p', { class: 'notice timeup' }, [
          element('span', { class: 'icon', 'aria-hidden': 'true', text: '⏱' }),
          element('span', { text: 'Time is up!' }),
        ]),
      );
    }
    if (myAnswer && myAnswer.error) parts.push(errorLine(myAnswer.error));
    return parts;
  }

  function renderReveal() {
    const question = status.question;
    const counts = question.choices.map(function () {
      return 0;
    });
    for (const result of status.results) if (result.choice !== null) counts[result.choice]++;
    const mine = status.results.find(function (result) {
      return result.id === page.playerId;
    });
    const parts = [
      progress('Question ' + (status.index + 1) + ' of ' + status.total),
      element('h2', { class: 'question-text', text: question.text }),
    ];
    if (mine) {
      const outcome = mine.correct ? 'correct' : mine.choice === null ? 'none' : 'wrong';
      parts.push(
        element('p', { class: 'verdict ' + outcome }, [
          element('span', {
            class: 'icon',
            'aria-hidden': 'true',
            text: outcome === 'correct' ? '✓' : outcome === 'wrong' ? '✗' : '–',
          }),
          element('span', {
            text:
              outcome === 'correct'
                ? 'Correct! +' + mine.points + ' points'
                : outcome === 'wrong'
                  ? 'Not quite.'
                  : 'No answer this time.',
          }),
        ]),
      );
      const score = document.getElementById('score');
      if (score) score.textContent = String(mine.score);
    }
    parts.push(
      element(
        'ul',
        { class: 'reveal-choices' },
        question.choices.map(function (choice, index) {
          const right = index === status.correct;
          return element('li', { class: 'choice ' + COLORS[index] + (right ? ' right' : ' dim') }, [
            element('span', { class: 'shape', 'aria-hidden': 'true', text: SHAPES[index] }),
            element('span', { class: 'label', text: choice }),
            right ? element('span', { class: 'badge', text: '✓ Right answer' }) : null,
            mine && mine.choice === index && !right
              ? element('span', { class: 'badge mine', text: 'Your answer' })
              : null,
            element('span', {
              class: 'count',
              text: counts[index] + (counts[index] === 1 ? ' answer' : ' answers'),
            }),
          ]);
        }),
      ),
    );
    if (isHost) parts.push(results(status.results));
    parts.push(scoreboard(status.scoreboard.slice(0, 5), 'Scores'));
    parts.push(
      element('p', {
        class: 'muted next',
        id: 'next',
        text: status.last ? 'The final results are coming…' : 'Next question in a moment…',
      }),
    );
    return parts;
  }

  // The host's way out at any point before the end: an abandoned lobby would otherwise stay open,
  // and its quiz locked against edits, for good.
  function endControl() {
    const end = element('button', {
      class: 'button secondary small',
      id: 'end',
      type: 'button',
      text: hostRequests.end.pending ? 'Ending…' : 'End the game',
      onclick: endGame,
    });
    if (hostRequests.end.pending) end.setAttribute('disabled', '');
    return element('div', { class: 'actions host-end' }, [end, errorLine(hostRequests.end.error)]);
  }

  function renderFinished() {
    if (status.endedEarly && status.asked === 0) {
      return [
        element('h2', { text: 'Game ended' }),
        element('p', { text: 'The host ended this game before it started.' }),
        element('p', {}, [element('a', { class: 'button', href: '/', text: 'Back home' })]),
      ];
    }
    const places = ['first', 'second', 'third'];
    const podium = element(
      'ol',
      { class: 'podium' },
      status.podium.map(function (entry, rank) {
        return element('li', { class: places[rank] + (entry.id === page.playerId ? ' me' : '') }, [
          element('span', { class: 'place', text: ['1st', '2nd', '3rd'][rank] }),
          element('span', { class: 'name', text: entry.nickname }),
          element('span', { class: 'points', text: entry.score + ' pts' }),
        ]);
      }),
    );
    const parts = [element('h2', { text: 'Final results' })];
    if (status.endedEarly) {
      parts.push(
        element('p', {
          class: 'muted',
          text:
            'The host ended the game after ' +
            status.asked +
            ' of ' +
            status.total +
            (status.total === 1 ? ' question.' : ' questions.'),
        }),
      );
    }
    parts.push(podium);
    const rank = status.scoreboard.findIndex(function (entry) {
      return entry.id === page.playerId;
    });
    if (rank >= 0) {
      parts.push(
        element('p', {
          class: 'verdict final',
          text:
            'You finished #' +
            (rank + 1) +
            ' of ' +
            status.scoreboard.length +
            ' with ' +
            status.scoreboard[rank].score +
            ' points.',
        }),
      );
    }
    parts.push(scoreboard(status.scoreboard, 'Everyone'));
    parts.push(
      element('p', {}, [element('a', { class: 'button', href: '/', text: 'Play again' })]),
    );
    return parts;
  }

  // What a screen reader hears: one short sentence when the game moves on, not every re-render
  // (the countdown would otherwise be read out every second).
  function announcement() {
    if (status.state === 'lobby') return '';
    if (status.state === 'question') {
      const intro = 'Question ' + (status.index + 1) + ' of ' + status.total + ': ';
      if (!isHost && myAnswer && myAnswer.index === status.index)
        return myAnswer.error || 'Answer locked in. Waiting for the others.';
      return intro + status.question.text;
    }
    if (status.state === 'reveal') {
      const verdict = root.querySelector('.verdict > span:last-child');
      return (
        (verdict ? verdict.textContent + ' ' : '') +
        'The right answer: ' +
        status.question.choices[status.correct] +
        '.'
      );
    }
    if (status.endedEarly && status.asked === 0) return 'The host ended this game.';
    const final = root.querySelector('.verdict');
    return 'Final results.' + (final ? ' ' + final.textContent : '');
  }

  let announced = '';
  function announce() {
    const text = announcement();
    if (text === announced) return;
    announced = text;
    const region = document.getElementById('announce');
    if (region) region.textContent = text;
  }

  function render() {
    clearInterval(countdownTimer);
    // Updates re-render the game; keyboard focus stays on the same control when it still exists.
    const focused = document.activeElement;
    const refocus =
      focused && root.contains(focused)
        ? focused.id
          ? '#' + focused.id
          : focused.dataset.choice !== undefined
            ? '[data-choice="' + focused.dataset.choice + '"]'
            : null
        : null;
    root.dataset.state = status.state;
    const parts =
      status.state === 'lobby'
        ? renderLobby()
        : status.state === 'question'
          ? renderQuestion()
          : status.state === 'reveal'
            ? renderReveal()
            : renderFinished();
    if (isHost && status.state !== 'finished') parts.push(endControl());
    root.replaceChildren.apply(root, parts.filter(Boolean));
    const again = refocus && root.querySelector(refocus);
    if (again && !again.disabled) again.focus();
    announce();
    if (status.state === 'question') {
      countdownTimer = setInterval(tick, 250);
    }
  }

  function tick() {
    const left = secondsLeft();
    const seconds = document.getElementById('seconds');
    if (!seconds) return;
    if (seconds.textContent !== String(left)) {
      if (left === 0) return render();
      seconds.textContent = String(left);
      seconds.nextSibling.textContent = left === 1 ? 'second left' : 'seconds left';
      seconds.closest('.clock').classList.toggle('low', left <= 3);
    }
    const fill = root.querySelector('.timer-fill');
    const total = Math.max(1, status.deadline - status.startedAt);
    if (fill)
      fill.style.width =
        Math.max(0, Math.min(100, ((status.deadline - serverNow()) / total) * 100)) + '%';
  }

  function post(path, body) {
    return fetch(path, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'x-csrf-token': page.csrf,
      },
      body: JSON.stringify(body),
      credentials: 'same-origin',
    }).then(function (response) {
      return response.json();
    });
  }

  function answer(choice) {
    if (myAnswer || status.state !== 'question') return;
    const index = status.index;
    myAnswer = { index: index, choice: choice };
    render();
    post('/games/' + page.gameId + '/answer', { index: index, choice: choice }).then(
      function (result) {
        if (result.error) {
          myAnswer = { index: index, choice: choice, error: result.error };
          render();
        }
      },
      function () {
        myAnswer = null;
        render();
      },
    );
  }

  function errorLine(text) {
    return text ? element('p', { class: 'error', role: 'alert', text: text }) : null;
  }

  function hostRequest(action) {
    const request = hostRequests[action];
    if (request.pending) return;
    request.pending = true;
    request.error = '';
    render();
    post('/games/' + page.gameId + '/' + action, {}).then(
      function (result) {
        // On success the button stays disabled until the next status replaces it.
        if (result.error) {
          request.pending = false;
          request.error = result.error;
          render();
        }
      },
      function () {
        request.pending = false;
        request.error = 'Could not reach the server. Try again.';
        render();
      },
    );
  }

  function startGame() {
    hostRequest('start');
  }

  function endGame() {
    if (hostRequests.end.pending) return;
    const consequence =
      status.state === 'lobby'
        ? 'Nobody will be able to join it any more.'
        : 'The scores so far become the final results.';
    if (window.confirm('End this game for everyone? ' + consequence)) hostRequest('end');
  }

  render();
})();
