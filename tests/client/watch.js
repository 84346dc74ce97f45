// SPDX-License-Identifier: LGPL-2.1-or-later
// SPDX-FileCopyrightText: The Outbox authors
//
// A GJS program on libOutbox through GObject Introspection (run by
// tests/integration/test_client_library.py with GI_TYPELIB_PATH and
// LD_LIBRARY_PATH naming the build tree):
//
//   gjs -m watch.js send SIZE       submit a SIZE-octet message as a stream
//                                   and watch it until it is sent
//   gjs -m watch.js retry ACCOUNT   submit through ACCOUNT, wait for
//                                   "failed", say so, wait for a line on
//                                   stdin, retry, and watch it until sent
//
// Uses the async calls (with callbacks) where watch.py uses the sync ones.
import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Outbox from 'gi://Outbox?version=1';
import System from 'system';

const [mode, argument] = ARGV;
const loop = new GLib.MainLoop(null, false);
const result = {states: []};
let failure = null;

function fail(what) {
    failure = what;
    loop.quit();
}

function messageText(size, subject) {
    const head = `From: alice@example.org\r\nTo: bob@example.org\r\nSubject: ${subject}\r\n\r\n`;
    const line = `${'y'.repeat(76)}\r\n`;
    const lines = Math.max(1, Math.floor((size - head.length) / line.length));
    return new TextEncoder().encode(head + line.repeat(lines));
}

function check(client, message) {
    if (message.state === Outbox.MessageState.FAILED && mode === 'retry' && !result.failed) {
        result.failed = message.id;
        print(JSON.stringify({failed: message.id, last_reply: message.last_reply}));
        const stdin = new Gio.DataInputStream({
            base_stream: new Gio.UnixInputStream({fd: 0, close_fd: false}),
        });
        stdin.read_line_async(GLib.PRIORITY_DEFAULT, null, (s, res) => {
            stdin.read_line_finish_utf8(res);
            message.retry_async(null, (m, r) => {
                try {
                    m.retry_finish(r);
                } catch (e) {
                    fail(`retry: ${e.message}`);
                }
            });
        });
    }
    if (message.state === Outbox.MessageState.SENT) {
        result.id = message.id;
        result.size = message.size;
        result.attempts = message.attempts;
        result.subject = message.subject;
        result.same_object = client.get_message(message.id) === message;
        loop.quit();
    }
}

// Follows the message object from the state it has now.
function watch(client, message) {
    result.states.push(message.state);
    message.connect('notify::state', () => {
        result.states.push(message.state);
        check(client, message);
    });
    check(client, message);
}

Outbox.Client.new(null, (source, res) => {
    let client;
    try {
        client = Outbox.Client.new_finish(res);
    } catch (e) {
        fail(`connect: ${e.message}`);
        return;
    }
    const messages = client.get_messages();
    messages.connect('items-changed', (model, position, removed, added) => {
        for (let i = position; i < position + added; i++) {
            const message = model.get_item(i);
            if (message.id === result.submitted)
                watch(client, message);
        }
    });
    client.load_messages_async(null, (c, r) => {
        try {
            c.load_messages_finish(r);
        } catch (e) {
            fail(`load: ${e.message}`);
            return;
        }
        const size = mode === 'send' ? parseInt(argument) : 2000;
        const options = mode === 'retry' ? new Outbox.SubmitOptions({account: argument}) : null;
        const stream = Gio.MemoryInputStream.new_from_bytes(
            new GLib.Bytes(messageText(size, 'from GJS')));
        c.submit_stream_async(stream, options, null, (cc, rr) => {
            try {
                result.submitted = cc.submit_stream_finish(rr);
            } catch (e) {
                fail(`submit: ${e.message}`);
                return;
            }
            // The row may have come before the reply.
            const message = cc.get_message(result.submitted);
            if (message && result.states.length === 0)
                watch(cc, message);
        });
    });
});

GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 90, () => fail('timed out'));
loop.run();
if (failure) {
    printerr(failure);
    System.exit(1);
}
const names = Object.fromEntries(Object.entries(Outbox.MessageState)
    .map(([name, value]) => [value, name.toLowerCase()]));
result.states = result.states.map(s => names[s]);
print(JSON.stringify(result));
