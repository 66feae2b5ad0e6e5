// Device numbers as Linux encodes them in st_rdev (the kernel's new_encode_dev: 12 bits of major,
// 20 of minor, the minor's low byte first).
export function rdevNumbers(rdev: number): { major: number; minor: number } {
  return { major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00) };
}
