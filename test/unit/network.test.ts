// Guest networking against a real network namespace made for the test (a veth as the pod's eth0
// with an address and a default route, as CNI leaves it): dynamic then static plans, the exact
// devices, filters and NAT rules they make, and releases that remove only their own, idempotently.
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { findNetns, prefixToMask, queueProxyEnv, releaseNetwork, setupNetwork, tapName, type NetRecord } from '../../src/monitors/network.js';

const ns = `ukunit${process.pid}`;
const netns = `/var/run/netns/${ns}`;
const sh = (...argv: string[]) => {
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const inNs = (...argv: string[]) => sh('ip', 'netns', 'exec', ns, ...argv);

describe('guest network plumbing', () => {
  beforeEach(() => {
    sh('ip', 'netns', 'add', ns);
    sh('ip', '-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0');
    sh('ip', '-n', ns, 'addr', 'add', '10.77.0.5/24', 'dev', 'eth0');
    sh('ip', '-n', ns, 'link', 'set', 'eth0', 'up');
    sh('ip', '-n', ns, 'route', 'add', 'default', 'via', '10.77.0.1');
  });
  afterEach(() => {
    spawnSync('ip', ['netns', 'del', ns]);
  });

  // urunc utils.go handleQueueProxy (with unikontainers.go New's queue-proxy detection).
  it('knative queue-proxy: probe hosts and REDIRECT_IP point at the first static guest', () => {
    const probe = 'SERVING_READINESS_PROBE={"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}';
    expect(queueProxyEnv(['A=1', probe, 'B=2'])).toEqual(['A=1', 'B=2',
      'SERVING_READINESS_PROBE={"tcpSocket":{"port":8080,"host":"172.16.1.2"},"successThreshold":1}', 'REDIRECT_IP=172.16.1.2']);
    expect(queueProxyEnv(['A=1'])).toEqual(['A=1', 'REDIRECT_IP=172.16.1.2']);
  });

  it('names and masks', () => {
    expect([0, 8, 24, 30, 32].map(prefixToMask)).toEqual(['0.0.0.0', '255.0.0.0', '255.255.255.0', '255.255.255.252', '255.255.255.255']);
    expect(tapName('k8s.io', 'a')).toMatch(/^ukt[0-9a-f]{10}$/);
    expect(tapName('k8s.io', 'a')).toBe(tapName('k8s.io', 'a'));
    expect(tapName('k8s.io', 'a')).not.toBe(tapName('default', 'a'));
  });

  // The single guest mirrors urunc's pkg/network dynamic mode (AddIngressQdisc + the match-all
  // mirred redirect in both directions): every packet, no port kept back.
  it('a dynamic guest takes the pod address; a second one is static behind NAT; each release removes only its own', async () => {
    const records: NetRecord[] = [];
    const user = { uid: 0, gid: 0 };
    const mac = JSON.parse(inNs('ip', '-j', 'link', 'show', 'eth0'))[0].address as string;
    const a = await setupNetwork({ netns, namespace: 'k8s.io', id: 'a', staticMode: false, user, record: (r) => records.push(r) });
    expect(a?.guest).toEqual({ ip: '10.77.0.5', mask: '255.255.255.0', gateway: '10.77.0.1', mac });
    expect(a?.guest.mac).toBe(mac);
    const prefs = () => [...new Set(inNs('tc', 'filter', 'show', 'dev', 'eth0', 'ingress').match(/pref (\d+)/g)?.map((p) => p.split(' ')[1]))].sort();
    const filters = inNs('tc', 'filter', 'show', 'dev', 'eth0', 'ingress');
    expect(prefs()).toEqual(['49103']);
    expect(filters).toContain(`Egress Redirect to device ${a?.record.tap}`);
    expect(filters).not.toContain('Mirror');
    expect(a?.mtu).toBe(1500);

    const b = await setupNetwork({ netns, namespace: 'k8s.io', id: 'b', staticMode: false, user, record: (r) => records.push(r) });
    expect(b?.record.mode).toBe('static');
    expect(b?.guest).toMatchObject({ ip: '172.16.1.2', mask: '255.255.255.252', gateway: '172.16.1.1' });
    expect(inNs('iptables', '-t', 'nat', '-S', 'POSTROUTING')).toContain('-A POSTROUTING -s 172.16.1.0/30 -o eth0 -p tcp -j MASQUERADE --to-ports 61440-65535');
    expect(inNs('cat', '/proc/sys/net/ipv4/ip_forward').trim()).toBe('1');
    // A static guest beside the dynamic one: its NAT replies and ARP need the pass-through.
    expect(prefs()).toEqual(['49100', '49101', '49102', '49103']);
    expect(inNs('tc', 'filter', 'show', 'dev', 'eth0', 'ingress')).toContain(`Egress Mirror to device ${a?.record.tap}`);
    const c = await setupNetwork({ netns, namespace: 'k8s.io', id: 'c', staticMode: true, user, record: (r) => records.push(r) });
    expect(c?.guest.ip).toBe('172.16.2.2');
    expect(records.map((r) => r.mode)).toEqual(['dynamic', 'static', 'static']);

    await releaseNetwork(b?.record as NetRecord);
    await releaseNetwork(b?.record as NetRecord);
    expect(inNs('iptables', '-t', 'nat', '-S', 'POSTROUTING')).not.toContain('172.16.1.0/30');
    expect(inNs('iptables', '-t', 'nat', '-S', 'POSTROUTING')).toContain('172.16.2.0/30');
    expect(prefs()).toEqual(['49100', '49101', '49102', '49103']);
    await releaseNetwork(c?.record as NetRecord);
    // The last static guest gone: the dynamic guest gets every packet again.
    expect(prefs()).toEqual(['49103']);
    await releaseNetwork(a?.record as NetRecord);
    expect(inNs('ip', '-o', 'link', 'show')).not.toMatch(/ukt/);
    expect(inNs('tc', 'qdisc', 'show', 'dev', 'eth0')).not.toContain('ingress');
    expect(inNs('iptables', '-t', 'nat', '-S', 'POSTROUTING').trim()).toBe('-P POSTROUTING ACCEPT');
  });

  // Regression (CRI shim SIGKILL): the spec names the pod netns as /proc/<pause pid>/ns/net, which is
  // gone (or another process's) by the time `delete` runs, while CNI's pinned namespace still holds the tap.
  it('finds the recorded namespace by inode when its recorded path is gone or names another namespace', async () => {
    const ino = fs.statSync(netns).ino;
    expect(await findNetns({ netns: '/proc/999999999/ns/net', netnsIno: ino })).toBe(netns);
    expect(await findNetns({ netns: '/proc/self/ns/net', netnsIno: ino })).toBe(netns);
    expect(await findNetns({ netns, netnsIno: ino })).toBe(netns);
    expect(await findNetns({ netns: '/proc/999999999/ns/net', netnsIno: 1 })).toBeUndefined();
  });

  it('concurrent set-ups in one namespace take one dynamic slot and distinct static subnets', async () => {
    const user = { uid: 0, gid: 0 };
    const plans = await Promise.all(['p', 'q', 'r'].map((id) => setupNetwork({ netns, namespace: 'k8s.io', id, staticMode: false, user, record: () => undefined })));
    expect(plans.filter((p) => p?.record.mode === 'dynamic')).toHaveLength(1);
    expect(new Set(plans.map((p) => p?.guest.ip)).size).toBe(3);
    for (const p of plans) await releaseNetwork(p?.record as NetRecord);
    expect(inNs('ip', '-o', 'link', 'show')).not.toMatch(/ukt/);
  });

  it('a half-made dynamic set-up (some filters missing) still releases cleanly; no pod interface means no network', async () => {
    const a = await setupNetwork({ netns, namespace: 'x', id: 'a', staticMode: false, user: { uid: 0, gid: 0 }, record: () => undefined });
    inNs('tc', 'filter', 'del', 'dev', 'eth0', 'parent', 'ffff:', 'prio', '49103');
    await releaseNetwork(a?.record as NetRecord);
    expect(inNs('tc', 'qdisc', 'show', 'dev', 'eth0')).not.toContain('ingress');
    sh('ip', '-n', ns, 'route', 'del', 'default');
    expect(await setupNetwork({ netns, namespace: 'x', id: 'b', staticMode: false, user: { uid: 0, gid: 0 }, record: () => undefined })).toBeUndefined();
    await releaseNetwork({ netns: '/var/run/netns/does-not-exist', tap: 'ukt0', mode: 'dynamic', podIf: 'eth0', nat: [] });
  });
});
