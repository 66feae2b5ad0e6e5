// deploy/install.sh against a scratch prefix and config file: the shim copy runs, the runtime block
// is added once and replaced on a rerun, the admin's own tables are kept, runc is listed exactly once,
// and a version 1 config is refused. (The CRI e2e tests run containerd on the installed result.)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const REPO = path.resolve(__dirname, '..', '..');
const tmp: string[] = [];
afterEach(() => {
  for (const d of tmp.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function install(dir: string, config: string, extra: string[] = []) {
  return spawnSync('bash', [path.join(REPO, 'deploy', 'install.sh'), '--prefix', path.join(dir, 'opt'), '--bindir', path.join(dir, 'bin'),
    '--containerd-config', config, '--urunc-config', path.join(dir, 'urunc.toml'), ...extra], { encoding: 'utf8' });
}

describe('deploy/install.sh', () => {
  it('installs a runnable shim and adds the runtime to a version 2 config once, keeping what was there', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inst-'));
    tmp.push(dir);
    const config = path.join(dir, 'config.toml');
    fs.writeFileSync(config, 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "localhost/pause:1"\n');
    for (let i = 0; i < 2; i++) {
      const r = install(dir, config);
      expect(r.status, r.stderr).toBe(0);
    }
    const text = fs.readFileSync(config, 'utf8');
    expect(text.match(/# BEGIN urunc-ts/g)).toHaveLength(1);
    expect(text).toContain('sandbox_image = "localhost/pause:1"');
    expect(text.match(/runtimes\.runc\]/g)).toHaveLength(1);
    expect(text).toContain(`ConfigPath = "${path.join(dir, 'urunc.toml')}"`);
    expect(fs.readFileSync(path.join(dir, 'urunc.toml'), 'utf8')).toContain('[monitors.qemu]');
    const v = spawnSync(path.join(dir, 'bin', 'containerd-shim-urunc-v2'), ['-v'], { encoding: 'utf8' });
    expect(v.stdout).toMatch(/^containerd-shim-urunc-v2:/);
  });
  it('does not list runc twice, writes version 3 tables for 2.x, and refuses a version 1 config', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inst-'));
    tmp.push(dir);
    const config = path.join(dir, 'config.toml');
    fs.writeFileSync(config, "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n  runtime_type = 'io.containerd.runc.v2'\n");
    expect(install(dir, config).status).toBe(0);
    const text = fs.readFileSync(config, 'utf8');
    expect(text.match(/runtimes\.runc\]/g)).toHaveLength(1);
    expect(text).toContain("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.urunc]");
    fs.writeFileSync(config, '[plugins.cri]\n');
    const r = install(dir, config);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('no version line');
  });
  it('--sandboxer shim: the 2.x runtime table names the shim sandboxer; a 1.x config is refused before anything is installed', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inst-'));
    tmp.push(dir);
    const config = path.join(dir, 'config.toml');
    fs.writeFileSync(config, 'version = 3\n');
    expect(install(dir, config, ['--sandboxer', 'shim']).status).toBe(0);
    expect(fs.readFileSync(config, 'utf8')).toMatch(/runtimes\.urunc\]\n  runtime_type = 'io\.containerd\.urunc\.v2'\n  sandboxer = 'shim'\n/);
    // containerd 2.1-2.3 cannot start a container in a shim sandbox whose runtime has non-runc options.
    expect(fs.readFileSync(config, 'utf8')).not.toContain('runtimes.urunc.options]');
    // A rerun without it goes back to containerd's pause sandbox.
    expect(install(dir, config).status).toBe(0);
    expect(fs.readFileSync(config, 'utf8')).not.toContain('sandboxer');
    const old = path.join(dir, 'old');
    fs.mkdirSync(old);
    const v2 = path.join(old, 'config.toml');
    fs.writeFileSync(v2, 'version = 2\n');
    const r = spawnSync('bash', [path.join(REPO, 'deploy', 'install.sh'), '--prefix', path.join(old, 'opt'), '--bindir', path.join(old, 'bin'),
      '--containerd-config', v2, '--urunc-config', path.join(old, 'urunc.toml'), '--sandboxer', 'shim'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('--sandboxer shim needs containerd 2.x');
    expect(fs.readdirSync(old)).toEqual(['config.toml']);
    expect(fs.readFileSync(v2, 'utf8')).toBe('version = 2\n');
    expect(install(dir, config, ['--sandboxer', 'pause']).stderr).toContain('--sandboxer must be podsandbox or shim');
  });
});
