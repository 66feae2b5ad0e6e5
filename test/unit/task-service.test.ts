// The task service's state machine and event ordering, with a recording fake runc and a fake
// reaper whose exits the test delivers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { TaskService, type RuncLike } from '../../src/task/service.js';
import type { TaskEvent } from '../../src/task/types.js';

class FakeRunc implements RuncLike {
  calls: string[] = [];
  nextPid = 100;
  onStart: (() => void | Promise<void>) | undefined;
  async create(id: string): Promise<number> {
    this.calls.push(`create ${id}`);
    return this.nextPid++;
  }
  async exec(id: string): Promise<number> {
    this.calls.push(`exec ${id}`);
    return this.nextPid++;
  }
  async start(id: string): Promise<void> {
    this.calls.push(`start ${id}`);
    await this.onStart?.();
  }
  async kill(id: string, _b: string, sig: number, all: boolean): Promise<void> {
    this.calls.push(`kill ${id} ${sig}${all ? ' all' : ''}`);
  }
  async delete(id: string, _b: string, force: boolean): Promise<void> {
    this.calls.push(`delete ${id}${force ? ' force' : ''}`);
  }
  async pause(id: string): Promise<void> {
    this.calls.push(`pause ${id}`);
  }
  async resume(id: string): Promise<void> {
    this.calls.push(`resume ${id}`);
  }
  async update(id: string, _b: string, json: string): Promise<void> {
    this.calls.push(`update ${id} ${json}`);
  }
  async checkpoint(id: string, _b: string, o: { imagePath: string; workPath: string; exit: boolean; openTcp?: boolean }): Promise<void> {
    this.calls.push(`checkpoint ${id} ${o.imagePath}${o.exit ? ' exit' : ''}${o.openTcp ? ' tcp' : ''} work=${o.workPath === '/w' ? '/w' : path.basename(o.workPath).replace(/-[^-]*$/, '-*')}`);
  }
  async restore(id: string, _b: string, o: { imagePath: string }): Promise<number> {
    this.calls.push(`restore ${id} ${o.imagePath}`);
    return this.nextPid++;
  }
  async ps(): Promise<number[]> {
    return [100];
  }
  async stats(): Promise<unknown> {
    return {};
  }
}

class FakeReaper {
  handlers = new Map<number, (s: number, at: Date) => void>();
  watch(pid: number, cb: (s: number, at: Date) => void): void {
    this.handlers.set(pid, cb);
  }
  unwatch(pid: number): void {
    this.handlers.delete(pid);
  }
  /** The exit, then a turn of the event loop: the service reports it once the process's output is drained. */
  async exit(pid: number, status: number): Promise<void> {
    const h = this.handlers.get(pid);
    this.handlers.delete(pid);
    h?.(status, new Date());
    await new Promise((r) => setImmediate(r));
  }
}

let bundle: string;
let runc: FakeRunc;
let reaper: FakeReaper;
let events: TaskEvent[];
let svc: TaskService;
const topics = () => events.map((e) => ('execId' in e ? `${e.topic}:${e.execId}` : e.topic === '/tasks/exit' ? `${e.topic}:${e.id}` : e.topic));
const noIo = { terminal: false, stdin: '', stdout: '', stderr: '' };
const create = () => svc.create('default', { id: 't', bundle, rootfs: [], checkpoint: '', options: undefined, ...noIo });
const spec = Buffer.from(JSON.stringify({ args: ['true'], cwd: '/' }));

beforeEach(() => {
  bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'svc-'));
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', process: { args: ['sh'] } }));
  runc = new FakeRunc();
  reaper = new FakeReaper();
  events = [];
  svc = new TaskService(pino({ level: 'silent' }), reaper, { publish: (_ns, e) => events.push(e) }, () => runc);
});

afterEach(() => fs.rmSync(bundle, { recursive: true, force: true }));

describe('task service', () => {
  it('runs create -> start -> exit -> delete and reports the exit status', async () => {
    expect(await create()).toBe(100);
    expect(svc.state('t', '').status).toBe('created');
    await svc.start('t', '');
    expect(svc.state('t', '').status).toBe('running');
    const waited = svc.wait('t', '');
    await reaper.exit(100, 3);
    expect((await waited).exitStatus).toBe(3);
    expect(svc.state('t', '')).toMatchObject({ status: 'stopped', exitStatus: 3, pid: 100 });
    expect((await svc.delete('t', '')).exitStatus).toBe(3);
    expect(topics()).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit:t', '/tasks/delete']);
    expect(runc.calls).toEqual(['create t', 'start t', 'delete t']);
    expect(svc.size).toBe(0);
  });

  it('holds an exit that arrives during Start until TaskStart is published', async () => {
    await create();
    // The exit is reported (after its output drained) while runc start has not returned yet.
    runc.onStart = async () => {
      await reaper.exit(100, 0);
      await new Promise((r) => setTimeout(r, 20));
    };
    await svc.start('t', '');
    expect(topics()).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit:t']);
    expect(svc.state('t', '').status).toBe('stopped');
  });

  it('publishes the init exit only after its execs have exited', async () => {
    await create();
    await svc.start('t', '');
    svc.exec({ id: 't', execId: 'e1', spec, ...noIo });
    await svc.start('t', 'e1');
    await reaper.exit(100, 137);
    expect(topics()).not.toContain('/tasks/exit:t');
    await reaper.exit(101, 137);
    expect(topics()).toEqual(['/tasks/create', '/tasks/start', '/tasks/exec-added:e1', '/tasks/exec-started:e1', '/tasks/exit:e1', '/tasks/exit:t']);
  });

  it('answers with the codes containerd relies on', async () => {
    expect(() => svc.state('nope', '')).toThrow(expect.objectContaining({ code: Code.NotFound }));
    await create();
    await expect(create()).rejects.toMatchObject({ code: Code.AlreadyExists });
    await svc.start('t', '');
    await expect(svc.start('t', '')).rejects.toMatchObject({ code: Code.FailedPrecondition });
    await expect(svc.delete('t', '')).rejects.toMatchObject({ code: Code.FailedPrecondition });
    svc.exec({ id: 't', execId: 'e1', spec, ...noIo });
    expect(() => svc.exec({ id: 't', execId: 'e1', spec, ...noIo })).toThrow(expect.objectContaining({ code: Code.AlreadyExists }));
    expect(() => svc.exec({ id: 't', execId: 'bad', spec: Buffer.from('{'), ...noIo })).toThrow(expect.objectContaining({ code: Code.InvalidArgument }));
    await expect(svc.kill('t', 'nope', 9, false)).rejects.toMatchObject({ code: Code.NotFound });
    await reaper.exit(100, 0);
    await expect(svc.kill('t', '', 9, false)).rejects.toMatchObject({ code: Code.NotFound });
    await expect(svc.start('t', 'e1')).rejects.toMatchObject({ code: Code.FailedPrecondition });
    await svc.delete('t', '');
    await expect(svc.delete('t', '')).rejects.toMatchObject({ code: Code.NotFound });
  });

  it('refuses hostile task and exec ids before touching anything', async () => {
    await expect(svc.create('default', { id: '../escape', bundle, rootfs: [], checkpoint: '', options: undefined, ...noIo }))
      .rejects.toMatchObject({ code: Code.InvalidArgument });
    await create();
    for (const execId of ['../../etc/x', 'a/b', '', 'x'.repeat(77), '.hidden']) {
      expect(() => svc.exec({ id: 't', execId, spec, ...noIo })).toThrow(expect.objectContaining({ code: Code.InvalidArgument }));
    }
    expect(runc.calls).toEqual(['create t']);
    expect(fs.existsSync(path.join(bundle, 'execs'))).toBe(false);
  });

  it('regression: a concurrent Create of the same id is AlreadyExists and does not undo the first', async () => {
    const first = create();
    await expect(create()).rejects.toMatchObject({ code: Code.AlreadyExists });
    expect(await first).toBe(100);
    expect(runc.calls).toEqual(['create t']);
  });

  it('a concurrent second Delete is NotFound and TaskDelete is published once', async () => {
    await create();
    await svc.start('t', '');
    await reaper.exit(100, 0);
    const [a, b] = await Promise.allSettled([svc.delete('t', ''), svc.delete('t', '')]);
    expect(a.status).toBe('fulfilled');
    expect(b).toMatchObject({ status: 'rejected', reason: { code: Code.NotFound } });
    expect(topics().filter((t) => t === '/tasks/delete')).toHaveLength(1);
  });

  it('rejects an invalid config.json at Create and leaves no task', async () => {
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify({ process: { args: 'not-a-list' } }));
    await expect(create()).rejects.toMatchObject({ code: Code.InvalidArgument });
    expect(svc.size).toBe(0);
    expect(runc.calls).toEqual([]);
  });

  it('deleting a created (never started) task force-deletes it', async () => {
    await create();
    const del = svc.delete('t', '');
    await reaper.exit(100, 137);
    expect((await del).exitStatus).toBe(137);
    expect(runc.calls).toEqual(['create t', 'delete t force']);
    expect(topics()).toEqual(['/tasks/create', '/tasks/exit:t', '/tasks/delete']);
  });

  it('pause and resume move the state and publish events', async () => {
    await create();
    await svc.start('t', '');
    await svc.pause('t');
    expect(svc.state('t', '').status).toBe('paused');
    await expect(svc.pause('t')).rejects.toMatchObject({ code: Code.FailedPrecondition });
    await svc.resume('t');
    expect(svc.state('t', '').status).toBe('running');
    expect(topics().slice(-2)).toEqual(['/tasks/paused', '/tasks/resumed']);
  });

  describe('checkpoint and restore of an ordinary container (criu through runc)', () => {
    let images: string;
    beforeEach(() => {
      images = fs.mkdtempSync(path.join(os.tmpdir(), 'svc-cp-'));
    });
    afterEach(() => fs.rmSync(images, { recursive: true, force: true }));

    it('checkpoint: runc checkpoint into the directory given (or image_path), criu working in the bundle unless a work path is given; a created task is refused', async () => {
      await create();
      await expect(svc.checkpoint('t', images, { exit: false, imagePath: '', workPath: '' })).rejects.toMatchObject({ code: Code.FailedPrecondition });
      await svc.start('t', '');
      await svc.checkpoint('t', images, { exit: false, imagePath: '', workPath: '', openTcp: true });
      await svc.checkpoint('t', '/nowhere', { exit: true, imagePath: images, workPath: '/w' });
      await expect(svc.checkpoint('t', path.join(images, 'missing'), { exit: false, imagePath: '', workPath: '' })).rejects.toMatchObject({ code: Code.InvalidArgument });
      expect(runc.calls.filter((c) => c.startsWith('checkpoint'))).toEqual([`checkpoint t ${images} tcp work=criu-work-*`, `checkpoint t ${images} exit work=/w`]);
      // The temporary work directory is gone.
      expect(fs.readdirSync(bundle).filter((f) => f.startsWith('criu-work'))).toEqual([]);
    });

    it('restore: Create runs no runc (pid 0), Start runs runc restore and watches the restored init', async () => {
      fs.writeFileSync(path.join(images, 'inventory.img'), '');
      expect(await svc.create('default', { id: 't', bundle, rootfs: [], checkpoint: images, options: undefined, ...noIo })).toBe(0);
      expect(svc.state('t', '')).toMatchObject({ status: 'created', pid: 0 });
      expect(await svc.start('t', '')).toBe(100);
      expect(svc.state('t', '')).toMatchObject({ status: 'running', pid: 100 });
      await reaper.exit(100, 7);
      expect((await svc.delete('t', '')).exitStatus).toBe(7);
      expect(runc.calls).toEqual([`restore t ${images}`, 'delete t']);
      expect(topics()).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit:t', '/tasks/delete']);
      // Not containerd's temporary extraction directory: kept.
      expect(fs.existsSync(path.join(images, 'inventory.img'))).toBe(true);
    });

    it('the directory containerd extracted the checkpoint image into (which it never removes) is removed once restored', async () => {
      const extracted = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrd-checkpoint'));
      const named = path.join(os.tmpdir(), `ctrd-checkpoint${Date.now()}`);
      fs.renameSync(extracted, named);
      try {
        fs.writeFileSync(path.join(named, 'inventory.img'), '');
        await svc.create('default', { id: 't', bundle, rootfs: [], checkpoint: named, options: undefined, ...noIo });
        expect(fs.existsSync(named)).toBe(true);
        await svc.start('t', '');
        expect(fs.existsSync(named)).toBe(false);
      } finally {
        fs.rmSync(named, { recursive: true, force: true });
      }
    });

    it('restore never started: kill ends the task without signalling anything (no pid 0 to kill), delete runs no runc', async () => {
      fs.writeFileSync(path.join(images, 'inventory.img'), '');
      await svc.create('default', { id: 't', bundle, rootfs: [], checkpoint: images, options: undefined, ...noIo });
      await svc.kill('t', '', 0, false);
      expect(svc.state('t', '').status).toBe('created');
      await svc.kill('t', '', 15, false);
      expect(svc.state('t', '')).toMatchObject({ status: 'stopped', exitStatus: 143 });
      expect((await svc.delete('t', '')).exitStatus).toBe(143);
      expect(runc.calls).toEqual([]);
      expect(svc.size).toBe(0);
    });

    it('a directory that is neither criu images nor a VM checkpoint is refused at Create, leaving no task', async () => {
      await expect(svc.create('default', { id: 't', bundle, rootfs: [], checkpoint: images, options: undefined, ...noIo })).rejects.toMatchObject({ code: Code.InvalidArgument });
      expect(svc.size).toBe(0);
      expect(runc.calls).toEqual([]);
    });
  });
});
