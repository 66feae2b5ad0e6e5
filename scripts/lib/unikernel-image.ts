// Packages a unikernel (kernel, optional initrd, optional extra files) as an OCI image tar the way
// urunc images are built (bunny/pun): the artifacts under /unikernel in a layer, and the
// com.urunc.unikernel.* description either as manifest annotations plus image config labels, or
// as /urunc.json with base64 values. `ctr images import` takes the result.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeOciImage } from './oci-image.js';

export interface UnikernelImage {
  name: string;
  type: string;
  hypervisor: string;
  kernel: string;
  initrd?: string;
  /** Other com.urunc.unikernel.* values (cmdline, block, blkMntPoint, mountRootfs, unikernelVersion, rootfsType). */
  extra?: Record<string, string>;
  /**
   * Where the description goes: manifest annotations + labels, /urunc.json, both (what bima
   * writes: LABELs become annotations and urunc.json), or only the image config's labels (what
   * bunny's LABEL lines give; CRI copies them into the container's labels).
   */
  describe: 'annotations' | 'urunc.json' | 'both' | 'labels';
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  user?: string;
  workingDir?: string;
  /** Additional directories added as layers below the unikernel layer (e.g. a root filesystem). */
  layers?: string[];
  /** Raw urunc.json content, written as is (for tests of hostile images). */
  uruncJsonOverride?: string;
}

export function buildUnikernelImage(img: UnikernelImage, outTar: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ukimg-'));
  try {
    fs.mkdirSync(path.join(dir, 'unikernel'));
    const kernelPath = `/unikernel/${path.basename(img.kernel)}`;
    fs.copyFileSync(img.kernel, path.join(dir, kernelPath));
    const values: Record<string, string> = {
      'com.urunc.unikernel.unikernelType': img.type,
      'com.urunc.unikernel.hypervisor': img.hypervisor,
      'com.urunc.unikernel.binary': kernelPath,
    };
    if (img.initrd) {
      const initrdPath = `/unikernel/${path.basename(img.initrd)}`;
      fs.copyFileSync(img.initrd, path.join(dir, initrdPath));
      values['com.urunc.unikernel.initrd'] = initrdPath;
    }
    for (const [k, v] of Object.entries(img.extra ?? {})) values[`com.urunc.unikernel.${k}`] = v;
    if (img.uruncJsonOverride !== undefined) fs.writeFileSync(path.join(dir, 'urunc.json'), img.uruncJsonOverride);
    else if (img.describe === 'urunc.json' || img.describe === 'both') {
      const encoded = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
      fs.writeFileSync(path.join(dir, 'urunc.json'), JSON.stringify(encoded, null, 2));
    }
    const asAnnotations = (img.describe === 'annotations' || img.describe === 'both') && img.uruncJsonOverride === undefined;
    const asLabels = asAnnotations || img.describe === 'labels';
    writeOciImage({
      name: img.name,
      layers: [...(img.layers ?? []), dir],
      config: {
        ...(img.cmd ? { Cmd: img.cmd } : {}),
        ...(img.entrypoint ? { Entrypoint: img.entrypoint } : {}),
        ...(img.env ? { Env: img.env } : {}),
        ...(img.user ? { User: img.user } : {}),
        ...(img.workingDir ? { WorkingDir: img.workingDir } : {}),
        ...(asLabels ? { Labels: values } : {}),
      },
      ...(asAnnotations ? { annotations: values } : {}),
    }, outTar);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
