'use strict';
/*
 * prewarm zygote agent for Node.js.
 *
 * Runs inside the sandbox as the template's runtime, speaking the protocol of
 * docs/agent-protocol.md on fd 3 (requests) and fd 4 (replies), like the Python agent: it preloads
 * modules, announces readiness, and blocks in a synchronous read of fd 3, where the engine
 * checkpoints it. Between requests nothing runs (an OpenWhisk instance serves one activation at a
 * time); during one, the event loop runs so that Promises, timers and async I/O work.
 *
 * What a checkpoint copies and every copy must not share, and how this agent deals with it:
 *  - Math.random is V8's per-context xorshift state: it is replaced, before any preload can keep a
 *    reference to the original, by one drawing from a pool that OpenSSL fills and that each copy
 *    empties on its first message;
 *  - OpenSSL's generator (crypto.randomBytes, getRandomValues, randomUUID) gets fresh kernel
 *    entropy through the clone helper (RAND_add), and randomUUID's cached batch is used up;
 *  - V8's string hash seed and the address-space layout cannot be changed after start-up and are
 *    shared (docs/templates.md).
 */
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const zlib = require('zlib');
const crypto = require('crypto');
const Module = require('module');
const {Readable} = require('stream');

const REQ_FD = 3;
const REP_FD = 4;
const ZYGOTE_HELPER = '/prewarm/libprewarm-zygote.so'; // the engine's clone call (src/zygote/)
const MAX_FRAME = 64 << 20;       // protocol limit on one frame, in bytes
const MAX_LOGS = 1 << 20;         // captured output returned per request, in characters
const MAX_UNPACKED = 512 << 20;   // what an archive may unpack to, in bytes
const MAX_MEMBERS = 20000;        // and in files and directories
const HOOK_MS = 10000;            // what one phase's hooks may take together
const ARCHIVES = ['.zip', '.tar', '.tar.gz', '.tgz'];

class ProtocolError extends Error {}

/* A request answered {"ok": false, kind, error}, with what the code printed when it ran. */
class Refused extends Error {
  constructor(kind, message, output) {
    super(message);
    this.kind = kind;
    this.output = output || {};
  }
}

/* The control channel is finished: the agent exits with status. */
class Hangup {
  constructor(status) { this.status = status; }
}

/* Unwinds a new clone's agent out of the parent's loop, to serve as an instance. */
class Restart {}

/* process.exit() called by the code: an exception for the request, as Python's SystemExit. */
class ExitCalled extends Error {
  constructor(code) {
    super(`process.exit(${code}) called`);
    this.name = 'Exit';
  }
}

// ---------------------------------------------------------------- framing

function readSome(buf, offset) {
  for (;;) {
    try {
      return fs.readSync(REQ_FD, buf, offset, buf.length - offset, null);
    } catch (e) {
      if (e.code !== 'EINTR' && e.code !== 'EAGAIN')
        throw e;
    }
  }
}

function readExact(n, midFrame) {
  const buf = Buffer.allocUnsafe(n);
  let got = 0;
  while (got < n) {
    const k = readSome(buf, got);
    if (k === 0)                  // EOF: clean between frames, abnormal inside one
      throw new Hangup(got > 0 || midFrame ? 1 : 0);
    got += k;
  }
  return buf;
}

function readFrame() {
  const size = readExact(4, false).readUInt32BE(0);
  if (size > MAX_FRAME) {         // the protocol's answer: say why, then close the channel
    writeFrame(encode({ok: false, kind: 'protocol', error: `frame of ${size} bytes exceeds the limit`}));
    throw new Hangup(1);
  }
  return size ? readExact(size, true) : Buffer.alloc(0);
}

function writeFrame(payload) {
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(payload.length, 0);
  const data = Buffer.concat([header, payload]);
  for (let off = 0; off < data.length;) {
    try {
      off += fs.writeSync(REP_FD, data, off, data.length - off);
    } catch (e) {
      if (e.code === 'EPIPE')     // the engine closed its end of fd 4
        throw new Hangup(1);
      if (e.code !== 'EINTR' && e.code !== 'EAGAIN')
        throw e;
    }
  }
}

/* JSON.stringify escapes lone surrogates, so what it makes is always valid UTF-8. */
function encode(reply) {
  return Buffer.from(JSON.stringify(reply), 'utf8');
}

/* An error's text: "Name: message" for an Error, and anything else as a template string shows
 * it (OpenWhisk's Node runtime says `${error}`). */
function describe(e) {
  if (e instanceof Error || (e && typeof e === 'object' && typeof e.message === 'string'))
    return `${e.name || 'Error'}: ${e.message}`;
  try {
    return String(e);
  } catch (_) {                   // Object.create(null), a Symbol's description
    return Object.prototype.toString.call(e);
  }
}

/* The error's stack without the agent's own frames. */
function stackOf(e) {
  if (!(e instanceof Error) || typeof e.stack !== 'string')
    return describe(e) + '\n';
  return e.stack.split('\n').filter((line) => !line.includes(__filename)).join('\n') + '\n';
}

function truncated(text) {
  return text.length <= MAX_LOGS ? text : text.slice(0, MAX_LOGS) + '\n[prewarm: logs truncated]\n';
}

// ---------------------------------------------------------------- output of user code

/* process.stdout and process.stderr (and so console.*) while the code runs. */
class Capture {
  constructor() {
    this.out = [];
    this.err = [];
    this.both = [];
    this.size = 0;
    this.saved = [process.stdout.write, process.stderr.write];
    process.stdout.write = this.writer(this.out);
    process.stderr.write = this.writer(this.err);
  }

  writer(own) {
    return (chunk, encoding, callback) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      if (this.size < 2 * MAX_LOGS) { // beyond that it would be truncated away anyway
        own.push(text);
        this.both.push(text);
        this.size += text.length;
      }
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function')
        process.nextTick(done);
      return true;
    };
  }

  traceback(e) {
    const text = stackOf(e);
    this.err.push(text);
    this.both.push(text);
  }

  end() {
    [process.stdout.write, process.stderr.write] = this.saved;
  }

  /* logs (both streams in order), stdout and stderr: those with text, or named in always. */
  fields(always = []) {
    const texts = {logs: this.both, stdout: this.out, stderr: this.err};
    const out = {};
    for (const [key, parts] of Object.entries(texts))
      if (parts.length || always.includes(key))
        out[key] = truncated(parts.join(''));
    return out;
  }
}

/* Runs fn() (sync or async) with the output captured; returns {value, failed, error, output}
 * (what is thrown may be undefined, null or 0: `failed` says whether something was). */
async function captured(fn) {
  const output = new Capture();
  try {
    return {value: await fn(output), failed: false, output};
  } catch (e) {
    if (!(e instanceof ExitCalled))
      output.traceback(e);
    return {failed: true, error: e, output};
  } finally {
    output.end();
  }
}

// ---------------------------------------------------------------- randomness

const randomPool = new Uint32Array(2048);
let randomNext = randomPool.length;

/* Math.random from OpenSSL: 53 random bits per double, 1024 doubles per refill. */
const random = function random() {
  if (randomNext >= randomPool.length) {
    crypto.randomFillSync(randomPool);
    randomNext = 0;
  }
  const high = randomPool[randomNext++] >>> 5;
  const low = randomPool[randomNext++] >>> 6;
  return (high * 67108864 + low) / 9007199254740992;
};

function replaceMathRandom() {
  Object.defineProperty(Math, 'random', {value: random, writable: true, configurable: true, enumerable: false});
}

/* Give this copy its own random state: every copy starts from the checkpoint's. */
function reseed() {
  if (ZYGOTE)
    ZYGOTE.reseedOpenSSL();
  randomNext = randomPool.length;
  for (let i = 0; i < 128; i++)   // Node's batch of 128 UUIDs: used up, refilled after the reseed
    crypto.randomUUID();
}

function processStartTime() {
  const stat = fs.readFileSync('/proc/self/stat', 'latin1');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

// ---------------------------------------------------------------- hooks

const hooks = {before: [], after: []};

/* The `prewarm` module user code requires: hooks around a checkpoint of an instance that loaded
 * it (a second-level template), as SnapStart's and CRaC's. */
const hooksModule = Object.freeze({
  /* fn() (or its Promise) runs before the instance is checkpointed; the last registered first. */
  beforeCheckpoint(fn) {
    if (typeof fn !== 'function')
      throw new TypeError('beforeCheckpoint takes a function');
    hooks.before.push(fn);
    return fn;
  },
  /* fn() runs in every copy restored from the checkpoint (and in the instance itself once its
   * checkpoint is taken), in the order registered, after the agent's own reseeding. */
  afterRestore(fn) {
    if (typeof fn !== 'function')
      throw new TypeError('afterRestore takes a function');
    hooks.after.push(fn);
    return fn;
  },
});

function installHooksModule() {
  const load = Module._load;
  Module._load = function (request, parent, isMain) {
    return request === 'prewarm' ? hooksModule : load.call(this, request, parent, isMain);
  };
}

/* fn() within ms: its synchronous part under vm's watchdog, a Promise it returns raced by a timer. */
async function withinTime(fn, ms, what) {
  const expired = () => new Error(`${what} took longer than ${HOOK_MS / 1000} s`);
  let value;
  globalThis.__prewarmHook = fn;
  try {
    value = new vm.Script('globalThis.__prewarmHook()').runInThisContext({timeout: Math.max(1, ms)});
  } catch (e) {
    throw e && e.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT' ? expired() : e;
  } finally {
    delete globalThis.__prewarmHook;
  }
  if (!value || typeof value.then !== 'function')
    return value;
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(expired()), Math.max(1, ms)); });
  try {
    return await Promise.race([value, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function runHooks(phase) {
  const list = phase === 'before_checkpoint' ? [...hooks.before].reverse() : [...hooks.after];
  const deadline = Date.now() + HOOK_MS;
  let failed = null;
  const {output} = await captured(async (out) => {
    for (const hook of list) {
      try {
        await withinTime(hook, deadline - Date.now(), `the ${phase} hooks`);
      } catch (e) {
        out.traceback(e);
        failed = `${phase} hook ${hook.name || '?'}: ${describe(e)}`;
        return;
      }
    }
  });
  if (failed)
    return {ok: false, kind: 'hook', error: failed, ...output.fields()};
  return {ok: true, hooks: list.length, ...output.fields()};
}

// ---------------------------------------------------------------- archives

/* A member's path inside the archive's directory, or Refused: nothing absolute, no '..'. */
function checkedName(name) {
  const normal = path.posix.normalize(name);
  if (name.includes('\0') || normal.startsWith('/') || normal === '..' || normal.startsWith('../'))
    throw new Refused('load', `archive member ${JSON.stringify(name)} leads out of the archive`);
  return normal;
}

function boundArchive(members, size) {
  if (members > MAX_MEMBERS || size > MAX_UNPACKED)
    throw new Refused('load', `archive of ${members} members and ${size} bytes unpacked is over the bounds ` +
                      `of ${MAX_MEMBERS} and ${MAX_UNPACKED}`);
}

function corrupt(why) {
  return new Refused('load', `cannot unpack archive: ${why}`);
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/* The zip's members from its central directory: {name, dir, method, size, packed, offset}. */
function zipMembers(blob) {
  let end = -1;
  for (let i = blob.length - 22; i >= Math.max(0, blob.length - 22 - 65535); i--)
    if (blob.readUInt32LE(i) === 0x06054b50) {
      end = i;
      break;
    }
  if (end < 0)
    throw corrupt('not a zip file (no end of central directory)');
  const count = blob.readUInt16LE(end + 10);
  let at = blob.readUInt32LE(end + 16);
  if (count === 0xffff || at === 0xffffffff)
    throw corrupt('zip64 archives are not supported');
  const members = [];
  for (let n = 0; n < count; n++) {
    if (at + 46 > blob.length || blob.readUInt32LE(at) !== 0x02014b50)
      throw corrupt('bad central directory entry');
    const nameLen = blob.readUInt16LE(at + 28);
    const name = blob.toString('utf8', at + 46, at + 46 + nameLen);
    const unixMode = (blob.readUInt16LE(at + 4) >> 8) === 3 ? blob.readUInt32LE(at + 38) >>> 16 : 0;
    const member = {
      name, method: blob.readUInt16LE(at + 10), flags: blob.readUInt16LE(at + 8),
      packed: blob.readUInt32LE(at + 20), size: blob.readUInt32LE(at + 24), offset: blob.readUInt32LE(at + 42),
      dir: name.endsWith('/') || (unixMode & S_IFMT) === S_IFDIR,
      type: unixMode & S_IFMT,
    };
    members.push(member);
    at += 46 + nameLen + blob.readUInt16LE(at + 30) + blob.readUInt16LE(at + 32);
  }
  return members;
}

function checkZipMember(m) {
  if (m.type && m.type !== S_IFREG && m.type !== S_IFDIR)
    throw new Refused('load', `archive member ${JSON.stringify(m.name)} is a ${m.type === S_IFLNK ? 'link' :
                      'device or special file'}, which an action may not hold`);
  if (m.flags & 1)
    throw corrupt(`member ${JSON.stringify(m.name)} is encrypted`);
  if (!m.dir && m.method !== 0 && m.method !== 8)
    throw corrupt(`member ${JSON.stringify(m.name)} uses compression method ${m.method}`);
}

function zipData(blob, m) {
  if (m.offset + 30 > blob.length || blob.readUInt32LE(m.offset) !== 0x04034b50)
    throw corrupt(`bad local header of ${JSON.stringify(m.name)}`);
  const start = m.offset + 30 + blob.readUInt16LE(m.offset + 26) + blob.readUInt16LE(m.offset + 28);
  const packed = blob.subarray(start, start + m.packed);
  // The declared size bounds what inflating may make: a member lying about it fails here.
  const data = m.method === 0 ? packed : zlib.inflateRawSync(packed, {maxOutputLength: Math.max(1, m.size)});
  if (data.length !== m.size)
    throw corrupt(`member ${JSON.stringify(m.name)} is not the size its header says`);
  return data;
}

function unpackZip(blob, root) {
  const members = zipMembers(blob);
  boundArchive(members.length, members.reduce((sum, m) => sum + m.size, 0));
  for (const m of members) {
    m.path = checkedName(m.name);
    checkZipMember(m);
  }
  for (const m of members)
    writeMember(root, m.path, m.dir ? null : zipData(blob, m));
}

/* A tar header's octal (or GNU base-256) number. */
function tarNumber(field) {
  if (field[0] & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++)
      n = n * 256 + field[i];
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text ? parseInt(text, 8) : 0;
}

function tarString(field) {
  const nul = field.indexOf(0);
  return field.toString('utf8', 0, nul < 0 ? field.length : nul);
}

function tarChecksumOk(h) {
  let sum = 0;
  for (let i = 0; i < 512; i++)
    sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === tarNumber(h.subarray(148, 156));
}

/* The pax extended header's path=, if any. */
function paxPath(data) {
  const text = data.toString('utf8');
  for (let at = 0; at < text.length;) {
    const space = text.indexOf(' ', at);
    const len = parseInt(text.slice(at, space), 10);
    if (!(len > 0))
      break;
    const record = text.slice(space + 1, at + len - 1);
    if (record.startsWith('path='))
      return record.slice(5);
    at += len;
  }
  return null;
}

const TAR_KINDS = {'1': 'link', '2': 'link', '3': 'device or special file', '4': 'device or special file',
                   '6': 'device or special file'};

/* The tar's members: {name, dir, data}; metadata entries (pax, GNU long names) applied. */
function tarMembers(tar) {
  const members = [];
  let longName = null;
  for (let at = 0; at + 512 <= tar.length;) {
    const h = tar.subarray(at, at + 512);
    if (h.every((b) => b === 0))
      break;
    if (!tarChecksumOk(h))
      throw corrupt('invalid tar header');
    const size = tarNumber(h.subarray(124, 136));
    const type = String.fromCharCode(h[156] || 48);
    const data = tar.subarray(at + 512, at + 512 + size);
    if (data.length !== size)
      throw corrupt('truncated tar archive');
    at += 512 + Math.ceil(size / 512) * 512;
    const prefix = h.subarray(257, 262).toString('latin1') === 'ustar' ? tarString(h.subarray(345, 500)) : '';
    let name = longName || (prefix ? `${prefix}/${tarString(h.subarray(0, 100))}` : tarString(h.subarray(0, 100)));
    longName = null;
    if (type === 'L' || type === 'x') {
      longName = type === 'L' ? tarString(data) : paxPath(data);
      continue;
    }
    if (type === 'g' || type === 'K')
      continue;
    if (TAR_KINDS[type])
      throw new Refused('load', `archive member ${JSON.stringify(name)} is a ${TAR_KINDS[type]}, which an action may not hold`);
    if (type !== '0' && type !== '5' && type !== '7')
      throw corrupt(`member ${JSON.stringify(name)} has unknown type ${JSON.stringify(type)}`);
    members.push({name, dir: type === '5', data});
    if (members.length > MAX_MEMBERS)
      boundArchive(members.length, 0);
  }
  return members;
}

function unpackTar(blob, root) {
  let tar = blob;
  if (blob[0] === 0x1f && blob[1] === 0x8b) {
    try {                         // a gzip bomb stops at the bound, not at the memory limit
      tar = zlib.gunzipSync(blob, {maxOutputLength: MAX_UNPACKED + (MAX_MEMBERS + 2) * 1024});
    } catch (e) {
      throw e instanceof RangeError ? new Refused('load', `archive unpacks to more than ${MAX_UNPACKED} bytes`)
                                    : corrupt(e.message);
    }
  }
  const members = tarMembers(tar);
  boundArchive(members.length, members.reduce((sum, m) => sum + (m.dir ? 0 : m.data.length), 0));
  for (const m of members)
    m.path = checkedName(m.name);
  for (const m of members)
    writeMember(root, m.path, m.dir ? null : m.data);
}

function writeMember(root, relative, data) {
  const target = path.join(root, relative);
  if (data === null) {
    fs.mkdirSync(target, {recursive: true, mode: 0o755});
    return;
  }
  fs.mkdirSync(path.dirname(target), {recursive: true, mode: 0o755});
  fs.writeFileSync(target, data, {mode: 0o644});
}

/* What the archive is, by its first bytes (OpenWhisk's Node runtime goes by them too). */
function archiveKind(blob) {
  if (blob.length >= 4 && blob[0] === 0x50 && blob[1] === 0x4b && (blob[2] === 3 || blob[2] === 5))
    return 'Zip';
  if (blob.length >= 2 && blob[0] === 0x1f && blob[1] === 0x8b)
    return 'Tar GZ';
  if (blob.length >= 262 && blob.toString('latin1', 257, 262) === 'ustar')
    return 'Tar';
  return null;
}

/* A zip, tar or tar.gz into a new private /tmp directory, returned; every member checked before
 * anything is written. What is refused is said on stderr as well, as the Node runtime does. */
function unpackArchive(blob) {
  const kind = archiveKind(blob);
  if (!kind)
    throw said(new Refused('load', 'There was an error uncompressing the action archive. The file type is unsupported'));
  const root = fs.mkdtempSync(path.join(require('os').tmpdir(), 'action-')); // $TMPDIR: /tmp in the sandbox
  try {
    if (kind === 'Zip')
      unpackZip(blob, root);
    else
      unpackTar(blob, root);
    return root;
  } catch (e) {
    fs.rmSync(root, {recursive: true, force: true});
    if (e instanceof Refused && !e.message.startsWith('cannot unpack'))
      throw said(e);
    throw said(new Refused('load', `There was an error uncompressing the action ${kind} archive. (${e.message})`));
  }
}

function said(refusal) {
  process.stderr.write(refusal.message + '\n');
  return refusal;
}

// ---------------------------------------------------------------- loading code

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/* OpenWhisk's Node convention for one file: the code runs as a CommonJS module; its entry is a
 * function of that name declared in it, or module.exports' (exports.main = ...). */
function loadFile(source, filename, entry) {
  if (!IDENTIFIER.test(entry))
    throw new ProtocolError('main must be a JavaScript identifier for a single file');
  const file = path.join('/tmp', path.basename(filename));
  // One line of wrapper before the code keeps its line numbers; the code cannot see `__entry`.
  const wrapper = `(function (exports, require, module, __filename, __dirname) {${source}\n` +
                  `;return typeof ${entry} === 'function' ? ${entry} : undefined;\n})`;
  let compiled;
  try {
    compiled = new vm.Script(wrapper, {filename: file});
  } catch (e) {
    throw syntaxRefusal(e, filename);
  }
  const mod = new Module(file, null);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths('/tmp');
  const declared = compiled.runInThisContext()
    .call(mod.exports, mod.exports, Module.createRequire(file), mod, file, '/tmp');
  return declared || exportedEntry(mod.exports, entry);
}

function exportedEntry(exports, entry) {
  let value = exports;
  for (const part of entry.split('.'))
    value = value === undefined || value === null ? undefined : value[part];
  return value;
}

function syntaxRefusal(e, filename) {
  const where = typeof e.stack === 'string' ? e.stack.split('\n')[0] : '';
  const line = where.match(/:(\d+)$/);
  return new Refused('syntax', `${describe(e)} (${filename}${line ? ':' + line[1] : ''})`);
}

/* A path the archive's code names, resolved inside its directory. */
function inside(root, name, what) {
  const target = path.resolve(root, name);
  if (target !== root && !target.startsWith(root + '/'))
    throw new Refused('load', `${what} ${JSON.stringify(name)} leads out of the archive`);
  return target;
}

/* OpenWhisk's Node convention for an archive: main "module.path" requires that module of it and
 * takes the property path; a main without a dot is taken from package.json's "main", else
 * index.js, at its top. */
function loadArchive(blob, filename, entry) {
  const root = unpackArchive(blob);
  process.chdir(root);            // relative paths reach the unpacked files
  const dot = entry.indexOf('.');
  let target;
  if (dot > 0) {
    target = inside(root, entry.slice(0, dot), 'the module of main');
    entry = entry.slice(dot + 1);
  } else {
    target = inside(root, packageMain(root), "package.json's main");
  }
  try {
    return exportedEntry(Module.createRequire(root + '/')(target), entry);
  } catch (e) {
    if (e instanceof SyntaxError)
      throw Object.assign(syntaxRefusal(e, path.relative(root, target)), {cause: e});
    throw e;
  }
}

function packageMain(root) {
  const pkgPath = path.join(root, 'package.json');
  if (!fs.existsSync(pkgPath)) {
    if (!fs.existsSync(path.join(root, 'index.js')))
      throw said(new Refused('load', 'Zipped actions must contain either package.json or index.js at the root.'));
    return 'index.js';
  }
  let pkg;
  try {
    pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
  } catch (e) {
    throw new Refused('load', `package.json is not JSON: ${e.message}`);
  }
  return typeof pkg.main === 'string' ? pkg.main : 'index.js';
}

// ---------------------------------------------------------------- web conventions

/* Fission's and OpenFaaS's Node environments are express servers that call the function. So is
 * the agent for those conventions: the function's app listens on an abstract socket of the
 * sandbox's own network namespace, made at the first request (a checkpoint before it sees no
 * socket), and each invoke is one real HTTP request to it. The function thus meets express's own
 * request and response, body parsers included, as on the platform. */
const WEB_SOCKET = '\0prewarm-web';
// What of-watchdog answers when the function's process ended under a request.
const WATCHDOG_UPSTREAM_ERROR = {status: 500, headers: [['X-OpenFaaS-Internal', 'of-watchdog']], body_b64: ''};
// Framing the agent sets itself from the body it forwards.
const HOP_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

/* A package's module as the platforms' servers name it: "file.func" is file's export func,
 * "file" the file's exports, "" the package's own main; a single file is the module itself.
 * CommonJS or ESM (by package.json's type or by its syntax), as Node's require() takes both. */
function webModule(blob, filename, entry) {
  const [file, func = ''] = entry.split('.', 2);
  if (!ARCHIVES.some((x) => filename.endsWith(x))) {
    const target = path.join('/tmp', path.basename(filename).replace(/(\.js)?$/, '.js'));
    fs.writeFileSync(target, blob);
    return {exports: requireFrom('/tmp', target), func: entry.includes('.') ? func : ''};
  }
  const root = unpackArchive(blob);
  process.chdir(root);
  shareTemplatePackages(root);
  const target = file ? inside(root, file, 'the module of the entry point') : root;
  // "main" is also what the engine says for "no entry point": the package's own main then.
  const named = file !== 'main' || resolvable(root, target);
  return {exports: requireFrom(root, named ? target : root), func};
}

/* ESM resolves packages only from node_modules up the file's path, never NODE_PATH: a package
 * without its own sees the template's, as Fission's server links its own beside the function. */
function shareTemplatePackages(root) {
  const own = path.join(root, 'node_modules');
  const shared = (process.env.NODE_PATH || '').split(':').find((dir) => dir && fs.existsSync(dir));
  if (shared && !fs.existsSync(own))
    fs.symlinkSync(shared, own);
}

/* The function of a web convention: Fission's named export, or the module itself (an ESM
 * module's default export); OpenFaaS's handler module's export, the module itself in its
 * templates. */
function webEntry(blob, filename, entry, convention) {
  const {exports, func} = webModule(blob, filename, entry);
  const esm = Object.prototype.toString.call(exports) === '[object Module]';
  const whole = esm ? exports.default : exports;
  if (typeof whole === 'function' && (convention === 'openfaas' || !func))
    return whole;
  return exports === null || exports === undefined ? undefined : exports[func || 'default'];
}

function requireFrom(root, target) {
  try {
    return Module.createRequire(root + '/')(target);
  } catch (e) {
    if (e instanceof SyntaxError)
      throw Object.assign(syntaxRefusal(e, path.relative(root, target) || '.'), {cause: e});
    throw e;
  }
}

function resolvable(root, target) {
  try {
    Module.createRequire(root + '/').resolve(target);
    return true;
  } catch (_) {
    return false;
  }
}

/* An express app as the platform's image runs it: NODE_ENV unset there, so express's development
 * error pages, unless the function's own environment says otherwise (the template's
 * NODE_ENV=production is the template's, not the function's). */
function platformApp(env) {
  const app = require('express')();
  app.set('env', env.NODE_ENV || 'development');
  return app;
}

function bodyLimit(name, otherwise) {
  return process.env[name] || otherwise;
}

/* Fission's environment (fission/environments nodejs/server.js): every method on "/", the
 * function called with {request, response}, or with a callback too; what it resolves to,
 * {status, body, headers}, is the answer, and a failure is 500 "Internal server error". */
function fissionApp(fn, env) {
  const app = platformApp(env);
  const express = require('express');
  const limit = bodyLimit('BODY_PARSER_LIMIT', '1mb');
  app.use(express.urlencoded({extended: false, limit}));
  app.use(express.json({limit}));
  app.use(express.raw({limit}));
  app.use(express.text({type: 'text/*', limit}));
  app.all('*', (req, res) => {
    const answer = (status, body, headers) => {
      if (!status)
        return;                   // no answer at all: the request waits, as on Fission
      for (const name of Object.keys(headers || {}))
        res.set(name, headers[name]);
      if (body instanceof Readable)  // streamed, as Fission's server does since it took streams
        body.pipe(res.status(status));
      else
        res.status(status).send(body);
    };
    const failed = (err) => {
      console.log(`Function error: ${err}`);
      answer(500, 'Internal server error');
    };
    const context = {request: req, response: res};
    if (fn.length >= 2) {
      try {
        fn(context, answer);
      } catch (err) {
        failed(err);
      }
      return;
    }
    // A synchronous throw goes to express's error handler, as it does there.
    Promise.resolve(fn.length === 0 ? fn() : fn(context))
      .then(({status, body, headers}) => answer(status, body, headers))
      .catch(failed);
  });
  return app;
}

/* OpenFaaS's node templates (openfaas/templates node20 index.js): the handler gets an event
 * {body, headers, method, query, path} and a context with status(), headers(), succeed() and
 * fail(); what it returns is the answer unless it called one of those. */
function openfaasApp(handler, env) {
  const app = platformApp(env);
  const express = require('express');
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    if (!req.headers['content-type'])
      req.headers['content-type'] = 'text/plain';   // the template's default: a body, not nothing
    next();
  });
  if (process.env.RAW_BODY === 'true') {
    app.use(express.raw({type: '*/*', limit: bodyLimit('MAX_RAW_SIZE', '100kb')}));
  } else {
    app.use(express.text({type: 'text/*'}));
    app.use(express.json({limit: bodyLimit('MAX_JSON_SIZE', '100kb')}));
    app.use(express.urlencoded({extended: true}));
  }
  const plain = (v) => !!v && (v.constructor === Array || v.constructor === Object);
  // async, as the template's: a handler's synchronous throw is a rejection nobody handles
  const serve = async (req, res) => {
    const context = new OpenfaasContext((err, value) => {
      if (err) {
        console.error(err);
        return res.status(context.status()).send(err.toString ? err.toString() : err);
      }
      res.set(context.headers()).status(context.status()).send(plain(value) ? JSON.stringify(value) : value);
    });
    const event = {body: req.body, headers: req.headers, method: req.method, query: req.query, path: req.path};
    Promise.resolve(handler(event, context, context.done))
      .then((value) => {
        if (!context.answered)
          context.succeed(value);
      })
      .catch((err) => context.done(err));
  };
  for (const method of ['post', 'get', 'patch', 'put', 'delete', 'options'])
    app[method]('/*', serve);
  return app;
}

class OpenfaasContext {
  constructor(done) {
    this.statusCode = 200;
    this.headerValues = {};
    this.answered = 0;
    this.done = done;
  }

  status(code) {
    if (!code)
      return this.statusCode;
    this.statusCode = code;
    return this;
  }

  headers(values) {
    if (!values)
      return this.headerValues;
    this.headerValues = values;
    return this;
  }

  succeed(value) {
    this.answered++;
    this.done(undefined, value);
  }

  fail(err) {
    if (this.statusCode === 200)  // a failure is not an OK
      this.statusCode = 500;
    this.answered++;
    this.done(err, undefined);
  }
}

/* The function's app behind a socket, and one HTTP request to it per invoke. */
class WebFunction {
  constructor(app) {
    this.app = app;
    this.server = null;
    this.client = null;
  }

  async listen() {
    const http = require('http');
    const server = http.createServer(this.app);
    // The agent's loop stands still between invokes (it blocks reading the next frame), so any
    // idle timer of the server would fire, overdue, just as the next request comes in on the
    // kept connection, and reset it: the server times nothing out.
    server.keepAliveTimeout = 0;
    server.headersTimeout = 0;
    server.requestTimeout = 0;
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(WEB_SOCKET, resolve);
    });
    this.server = server;
  }

  /* Drops the client's connection, which may carry a request the app never answers. */
  abandon() {
    if (this.client)
      this.client.destroy();
    this.client = null;
  }

  /* {method, path, raw_path, query, headers: [[name, value]], body_b64} -> {status, headers,
   * body_b64}: the request line as the client sent it (raw_path; the decoded path, encoded again,
   * if the engine's caller gave none). */
  async request(req) {
    if (!this.server)
      await this.listen();
    if (!this.client)
      this.client = new (require('http').Agent)({keepAlive: true, maxSockets: 1});
    const body = Buffer.from(req.body_b64 || '', 'base64');
    const headers = [];
    let host = false;
    for (const [name, value] of req.headers || []) {
      const lower = String(name).toLowerCase();
      host = host || lower === 'host';
      if (!HOP_HEADERS.has(lower))
        headers.push(String(name), String(value));
    }
    if (!host)                    // HTTP/1.0 has none; Node's server wants one
      headers.push('Host', 'localhost');
    // As the platforms' Go proxies forward it: a bodiless GET or HEAD without a length.
    const method = req.method || 'GET';
    if (body.length > 0 || !['GET', 'HEAD'].includes(method))
      headers.push('Content-Length', String(body.length));
    const path = typeof req.raw_path === 'string' && req.raw_path ? req.raw_path : encodeURI(req.path || '/');
    const target = path + (req.query ? `?${req.query}` : '');
    return this.send({method, path: target, headers}, body).catch((e) => {
      // A kept connection that died before any answer (nothing of the request was served).
      if (!e.reusedSocket || e.code !== 'ECONNRESET')
        throw e;
      this.abandon();
      this.client = new (require('http').Agent)({keepAlive: true, maxSockets: 1});
      return this.send({method, path: target, headers}, body);
    });
  }

  send(options, body) {
    const {method, path: target, headers} = options;
    return new Promise((resolve, reject) => {
      const http = require('http');
      const out = http.request({socketPath: WEB_SOCKET, agent: this.client, method, path: target, headers},
                               (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const pairs = [];
          for (let k = 0; k + 1 < res.rawHeaders.length; k += 2)
            pairs.push([res.rawHeaders[k], res.rawHeaders[k + 1]]);
          resolve({status: res.statusCode, headers: pairs, body_b64: Buffer.concat(chunks).toString('base64')});
        });
        res.on('error', reject);
      });
      out.on('error', (e) => reject(Object.assign(e, {reusedSocket: out.reusedSocket})));
      out.end(body);
    });
  }
}

/* An exception that escapes the function's callbacks while it serves a request: Fission's server
 * logs it and goes on; under OpenFaaS's, Node would end, so here the request fails. */
function escapesDuring(convention, promise) {
  let fail;
  const failed = new Promise((_, reject) => {
    fail = reject;
  });
  const escaped = (err) => (convention === 'fission' ? console.error(`Caught exception: ${err}`) : fail(err));
  process.on('uncaughtException', escaped);
  return Promise.race([promise, failed]).finally(() => process.removeListener('uncaughtException', escaped));
}

// ---------------------------------------------------------------- requests

/* A rejection's reason as a result can carry it: an Error as {name, message, stack} and its own
 * properties, an object as it is, nothing as {}. */
function serializedError(reason) {
  if (reason instanceof Error) {
    const out = {name: reason.name, message: reason.message, stack: reason.stack};
    for (const key of Object.keys(reason))
      out[key] = reason[key];
    return out;
  }
  return reason === undefined || reason === null || reason === false || reason === 0 || reason === '' ? {} : reason;
}

function checkEnv(env, what) {
  if (env === null || typeof env !== 'object' || Array.isArray(env) ||
      !Object.values(env).every((v) => typeof v === 'string'))
    throw new ProtocolError(`${what} must be an object of strings`);
}

class Agent {
  constructor() {
    this.handler = null;
    this.specialized = false;
    this.activationEnv = [];
    this.web = null;              // the Fission or OpenFaaS convention's app (WebFunction)
    this.convention = 'openwhisk';
  }

  async specialize(req, blob) {
    if (this.specialized)
      throw new Refused('state', 'already specialized; an instance loads code only once');
    const {filename, main: entry = 'main', env = {}, convention = 'openwhisk'} = req;
    const web = convention === 'fission' || convention === 'openfaas';
    if (!web && convention !== 'openwhisk')
      throw new ProtocolError('convention must be openwhisk, fission or openfaas');
    // A web platform's file is JavaScript whatever its name (Fission's v1 file is "user").
    if (typeof filename !== 'string' ||
        !(web || filename.endsWith('.js') || ARCHIVES.some((x) => filename.endsWith(x))))
      throw new ProtocolError('filename must be a string ending in .js, .zip, .tar, .tar.gz or .tgz');
    if (typeof entry !== 'string' || !entry)
      throw new ProtocolError('main must be a non-empty string');
    checkEnv(env, 'env');
    this.specialized = true;      // from here on user code may run, even if loading fails
    // A restored copy's agent is its namespace's pid 1: it goes on under an init (prewarm-zygote.h).
    if (ZYGOTE && typeof ZYGOTE.goUnderInit === 'function')
      ZYGOTE.goUnderInit();
    Object.assign(process.env, env);
    const {value: handler, failed, error, output} = await captured(() =>
      web ? webEntry(blob, filename, entry, convention)
        : filename.endsWith('.js') ? loadFile(blob.toString('utf8'), filename, entry) : loadArchive(blob, filename, entry));
    if (error instanceof Refused || error instanceof ProtocolError) {
      if (error.output)
        error.output = output.fields();
      throw error;
    }
    if (failed)
      throw new Refused('load', describe(error), output.fields());
    if (typeof handler !== 'function')
      throw new Refused('entry', web ? `${entry} is not a function in the package` :
        `Action entrypoint '${entry}' is not a function.`, output.fields());
    this.handler = handler;
    if (web) {
      this.web = new WebFunction(convention === 'fission' ? fissionApp(handler, env) : openfaasApp(handler, env));
      this.convention = convention;
    }
    return {ok: true, ...output.fields()};
  }

  /* One HTTP request of a web platform, answered with what the function's app made of it. */
  async invokeWeb(req) {
    const http = req.args;
    if (http === null || typeof http !== 'object' || Array.isArray(http) ||
        !Array.isArray(http.headers === undefined ? [] : http.headers))
      throw new ProtocolError("a web invoke's args are {method, path, query, headers, body_b64}");
    const {value, failed, error, output} = await captured(() => escapesDuring(this.convention, this.web.request(http)));
    const streams = output.fields(['logs']);
    if (failed) {
      this.web.abandon();         // its request may never be answered: the next one goes apart
      if (this.convention === 'openfaas') // the process would be gone: of-watchdog's answer
        return encode({ok: true, result: WATCHDOG_UPSTREAM_ERROR, ...streams});
      return {ok: false, kind: 'exception', error: describe(error), ...streams};
    }
    return encode({ok: true, result: value, ...streams});
  }

  /* The per-activation environment (OpenWhisk's __OW_*), as the Python agent applies it. */
  applyEnv(env) {
    checkEnv(env, '__prewarm_env');
    for (const key of this.activationEnv)
      if (!(key in env))
        delete process.env[key];
    Object.assign(process.env, env);
    this.activationEnv = Object.keys(env);
  }

  async invoke(req) {
    if (!this.handler)
      throw new Refused('state', 'invoke before a successful specialize');
    if (this.web)
      return this.invokeWeb(req);
    let args = req.args === undefined ? {} : req.args;
    if (args === null || typeof args !== 'object')
      throw new ProtocolError('args must be an object or an array');
    if (!Array.isArray(args)) {
      const {__prewarm_env: env, ...rest} = args;
      args = '__prewarm_value' in rest ? rest.__prewarm_value : rest;
      if (env !== undefined)
        this.applyEnv(env);
    }
    const {value, failed, error, output} = await captured(() => this.call(args));
    const streams = output.fields(['logs']);
    if (failed)
      return {ok: false, kind: 'exception', error: describe(error), ...streams};
    const result = value === undefined ? {} : value; // a bare `return;` answers {}, as OpenWhisk's runtime does
    if (result === null || typeof result !== 'object')
      return {ok: false, kind: 'result', error: `handler returned ${result === null ? 'null' : typeof result}, not an object`,
              ...streams};
    try {                         // encoded here, so a bad result is the handler's fault
      return encode({ok: true, result, ...streams});
    } catch (e) {                 // BigInt, cycles
      return {ok: false, kind: 'result', error: `handler returned a result that is not JSON: ${describe(e)}`, ...streams};
    }
  }

  /* main(args), awaited if it returns a Promise. A throw, or an exception that escapes the code's
   * own callbacks meanwhile, fails the call; a Promise main returns that rejects is an application
   * error, as in OpenWhisk's Node runtime: the result {error: reason}. The loop is kept alive so
   * that a Promise that never settles waits for the engine's timeout instead of ending the process. */
  call(args) {
    return new Promise((resolve, reject) => {
      const keepAlive = setInterval(() => {}, 1 << 30);
      const settle = (fn) => (value) => {
        clearInterval(keepAlive);
        process.removeListener('uncaughtException', escaped);
        fn(value);
      };
      const escaped = settle(reject);
      process.on('uncaughtException', escaped);
      let returned;
      try {
        returned = this.handler(args);
      } catch (e) {
        return escaped(e);
      }
      Promise.resolve(returned).then(settle(resolve), (reason) => settle(resolve)({error: serializedError(reason)}));
    });
  }

  parent() {
    if (this.specialized || !ZYGOTE)
      throw new Refused('state', 'only an unspecialized zygote with the clone helper is a parent');
    const [mine, theirs] = ZYGOTE.socketpair();
    writeFrame(encode({ok: true, fd: theirs}));
    serveParent(mine, theirs);
  }
}

// ---------------------------------------------------------------- template parent

let ZYGOTE = null;

/* The clone helper as a Node module, or null (Node without it: restores only). */
function loadZygote() {
  if (!fs.existsSync(ZYGOTE_HELPER))
    return null;
  const mod = {exports: {}};
  try {
    process.dlopen(mod, ZYGOTE_HELPER);
  } catch (_) {                   // built without Node's headers: not a Node module
    return null;
  }
  return typeof mod.exports.clone === 'function' ? mod.exports : null;
}

/* Clone a child for each request on the engine's socket until the engine hangs up; returns only
 * in a new clone, as its agent. */
function serveParent(sock, engineEnd) {
  ZYGOTE.reapChildren();
  for (;;) {
    const {msg, fds} = ZYGOTE.recv(sock);
    if (engineEnd !== null) {     // the engine took its end: the socket is ours alone now
      ZYGOTE.close(engineEnd);
      engineEnd = null;
    }
    if (msg === null)
      throw new Hangup(0);
    const answer = parentRequest(msg, fds);
    if (answer === null)
      continue;
    ZYGOTE.send(sock, encode(answer.reply), answer.pidfd);
    if (answer.pidfd >= 0)
      ZYGOTE.close(answer.pidfd);
  }
}

/* One request of the engine: {reply, pidfd}, or null for none. The descriptors that came with it
 * are the child's: the parent closes its copies. */
function parentRequest(msg, fds) {
  let req;
  try {
    req = JSON.parse(msg.toString('utf8'));
  } catch (e) {
    fds.forEach(ZYGOTE.close);
    return {reply: {ok: false, kind: 'protocol', error: `malformed JSON: ${e.message}`}, pidfd: -1};
  }
  if (req && req.op === 'attached') {
    fds.forEach(ZYGOTE.close);
    return null;
  }
  let cloned;
  try {
    if (!req || req.op !== 'clone')
      throw new ProtocolError('a parent takes only clone requests');
    cloned = ZYGOTE.clone(req.uid, req.gid, req.tmp_mb, fds);
  } catch (e) {
    fds.forEach(ZYGOTE.close);
    return {reply: e instanceof ProtocolError ? refusal(e) : {ok: false, kind: 'clone', error: e.message}, pidfd: -1};
  }
  if (cloned.pid === 0)           // the new clone's agent: its helper closed the descriptors
    throw new Restart();
  fds.forEach(ZYGOTE.close);
  return {reply: {ok: true, pid: cloned.pid}, pidfd: cloned.pidfd};
}

// ---------------------------------------------------------------- serving

function refusal(e) {
  if (e instanceof Refused)
    return {ok: false, kind: e.kind, error: e.message, ...e.output};
  return {ok: false, kind: 'protocol', error: e.message};
}

async function answer(agent, frame) {
  let req;
  try {
    req = JSON.parse(frame.toString('utf8'));
  } catch (e) {
    throw new ProtocolError(`malformed JSON: ${e.message}`);
  }
  if (req === null || typeof req !== 'object' || Array.isArray(req))
    throw new ProtocolError('a request must be a JSON object');
  switch (req.op) {
  case 'specialize':
    return agent.specialize(req, readFrame()); // the code blob always follows, even if we refuse
  case 'invoke':
    return agent.invoke(req);
  case 'parent':
    return agent.parent();
  case 'before_checkpoint':
  case 'after_restore':
    return runHooks(req.op);      // after a restore, the reseeding came first
  default:
    throw new ProtocolError(`unknown op ${JSON.stringify(req.op)}`);
  }
}

/* Answer requests until the engine hangs up. */
async function serve() {
  const agent = new Agent();
  let startedSeen = null;         // the checkpoint is taken before the first message
  for (;;) {
    const frame = readFrame();
    // A restored copy is a new process with a start time of its own: its first message finds
    // another start time than the one this agent saw last (or none yet) and reseeds.
    const started = processStartTime();
    if (started !== startedSeen) {
      reseed();
      startedSeen = started;
    }
    let reply;
    try {
      reply = await answer(agent, frame);
    } catch (e) {
      if (!(e instanceof ProtocolError || e instanceof Refused))
        throw e;
      reply = refusal(e);
    }
    let payload = Buffer.isBuffer(reply) ? reply : encode(reply);
    if (payload.length > MAX_FRAME)
      payload = encode({ok: false, kind: 'result', logs: '',
                        error: `reply of ${payload.length} bytes exceeds the frame limit`});
    writeFrame(payload);
  }
}

/* Node threads that exist before any preload: the runtime's own, idle at the checkpoint. */
function threadCount() {
  return fs.readdirSync('/proc/self/task').length;
}

/* Points fds 0-2 at /dev/null: each closed number is the lowest free one, which open reuses. */
function stdioToDevNull() {
  for (const fd of [0, 1, 2]) {
    fs.closeSync(fd);
    const got = fs.openSync('/dev/null', fd === 0 ? 'r' : 'w');
    if (got !== fd)
      throw new Error(`/dev/null opened as fd ${got}, not ${fd}`);
  }
}

/* Preload, then shed what a checkpoint would carry for nothing. */
function prepare() {
  replaceMathRandom();            // before any module can keep V8's own
  installHooksModule();
  const threads = threadCount();
  for (const name of (process.env.PREWARM_PRELOAD || '').split(/\s+/).filter(Boolean)) {
    try {
      require(name);
    } catch (e) {
      process.stderr.write(`prewarm agent: cannot preload ${name}: ${describe(e)}\n`);
      process.exit(1);
    }
  }
  if (threadCount() !== threads) {
    process.stderr.write(`prewarm agent: preloading started ${threadCount() - threads} threads (libuv's pool?); ` +
                         'the checkpoint must hold only the runtime\'s own idle threads\n');
    process.exit(1);
  }
  ZYGOTE = loadZygote();
  stdioToDevNull();
  const v8 = require('v8');       // a compact heap checkpoints and restores faster
  v8.setFlagsFromString('--expose-gc');
  vm.runInNewContext('gc')();
  ready();
}

function ready() {
  writeFrame(encode({op: 'ready', runtime: `Node.js ${process.version}`, pid: process.pid, clone: ZYGOTE !== null}));
}

/* Ends the agent. A clone has none of Node's threads but its own, so it must not let Node join
 * them: the helper's exit skips that teardown. */
function finish(status) {
  if (ZYGOTE)
    ZYGOTE.exit(status);
  realExit(status);
}

const realExit = process.reallyExit.bind(process);

async function main() {
  prepare();
  process.reallyExit = (code) => {  // process.exit() in user code fails its request instead
    throw new ExitCalled(code === undefined ? 0 : code);
  };
  for (;;) {
    try {
      await serve();
    } catch (e) {
      if (e instanceof Restart) {   // a parent's new clone: announce itself, then serve
        ready();
        continue;
      }
      if (e instanceof Hangup)
        return finish(e.status);
      throw e;
    }
  }
}

module.exports = {serve, prepare, Hangup, REQ_FD, REP_FD};

if (require.main === module)
  main().catch((e) => {
    try {
      fs.writeSync(2, `prewarm agent: ${stackOf(e)}`);
    } finally {
      finish(70);
    }
  });
