// A Chromium that comes from the npm registry: the dev dependency @sparticuz/chromium
// ships a headless Chromium for x86-64 Linux inside the package (brotli-compressed), with
// the NSS/NSPR/expat libraries it links against and a font. Its own executablePath()
// unpacks into the shared /tmp with fixed names; we unpack into node_modules/.cache once
// per package version (atomically, so parallel runs never see half a file) and point the
// browser at the shipped libraries and fonts. With them, the binary needs only glibc and
// libgcc from the machine (checked with ldd: see README's "Two commands").
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { brotliDecompressSync, createBrotliDecompress } from "node:zlib";

export interface BrowserLaunch {
  executablePath: string;
  /** Environment for the browser process (added to the test's own). */
  env: Record<string, string>;
  /** What the setup line names: "the system's Chromium" or the npm package and version. */
  source: string;
}

const PACKAGE = "@sparticuz/chromium";

function packageDir(): string | null {
  try {
    // .../node_modules/@sparticuz/chromium/build/index.js → the package folder
    return dirname(dirname(Bun.fileURLToPath(import.meta.resolve(PACKAGE))));
  } catch {
    return null;
  }
}

/** The unpacked browser, or null when the package is not installed or not for this machine. */
export async function npmChromium(): Promise<BrowserLaunch | null> {
  const pkg = packageDir();
  if (!pkg || process.platform !== "linux" || process.arch !== "x64") return null;
  const { version } = (await Bun.file(join(pkg, "package.json")).json()) as { version: string };
  const root = join(pkg, "..", "..", ".cache", `bunchat-chromium-${version}`);
  if (!existsSync(join(root, "chromium"))) await unpack(join(pkg, "bin"), root);
  return {
    executablePath: join(root, "chromium"),
    env: { LD_LIBRARY_PATH: join(root, "lib"), FONTCONFIG_FILE: join(root, "fonts.conf") },
    source: `${PACKAGE} ${version} from npm`,
  };
}

async function unpack(bin: string, root: string): Promise<void> {
  const staging = `${root}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  // 67 MB compressed, 200 MB unpacked: stream it rather than hold it in memory.
  await pipeline(createReadStream(join(bin, "chromium.br")), createBrotliDecompress(), createWriteStream(join(staging, "chromium"), { mode: 0o755 }));
  // The libraries (lib/) and the font (fonts/): small tarballs.
  for (const tarball of ["al2023.tar.br", "fonts.tar.br"]) {
    await new Bun.Archive(brotliDecompressSync(await Bun.file(join(bin, tarball)).bytes())).extract(staging);
  }
  // The package's fonts.conf names /tmp paths; ours names the unpacked font and, when the
  // machine has any, its own fonts (CJK text in screenshots).
  writeFileSync(
    join(staging, "fonts.conf"),
    `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <dir>${join(root, "fonts")}</dir>\n  <dir>/usr/share/fonts</dir>\n  <cachedir>${join(root, "fonts-cache")}</cachedir>\n</fontconfig>\n`,
  );
  try {
    renameSync(staging, root);
  } catch {
    // Another run unpacked it first.
    rmSync(staging, { recursive: true, force: true });
  }
}
