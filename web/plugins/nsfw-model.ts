import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { Plugin } from 'vite';

// nsfwjs ships its MobileNetV2 model as two UMD scripts: the model JSON and
// the weights as one base64 string (3.5 MB). Fetching and decoding those in
// the browser would cost a third more bytes and a base64 pass; instead this
// plugin turns them at build time into a plain model.json and a binary
// weights file (2.6 MB), both under assets/ with a content hash in the name,
// so the node serves them from the binary with a year-long cache.
// `import modelUrl from 'virtual:nsfw-model'` gives the model.json's URL.

const id = 'virtual:nsfw-model';
const resolvedId = '\0' + id;
const devPrefix = '/@nsfw-model/';

interface Files {
  jsonName: string;
  json: string;
  weightsName: string;
  weights: Buffer;
}

const shortHash = (b: Buffer | string) => createHash('sha256').update(b).digest('hex').slice(0, 12);

function readModel(): Files {
  const req = createRequire(import.meta.url);
  // The package's exports map hides dist/models: find it from its main entry (dist/cjs/index.js).
  const dir = join(dirname(req.resolve('nsfwjs')), '..', 'models', 'mobilenet_v2');
  const model = req(join(dir, 'model.min.js')) as {
    modelTopology: unknown;
    weightsManifest: { paths: string[]; weights: unknown[] }[];
  };
  const shard = req(join(dir, 'group1-shard1of1.min.js')) as string;
  if (typeof shard !== 'string' || model.weightsManifest.length !== 1) {
    throw new Error('nsfw-model: unexpected layout of nsfwjs MobileNetV2 files');
  }
  const weights = Buffer.from(shard, 'base64');
  const weightsName = `nsfw-mobilenet-v2-${shortHash(weights)}.bin`;
  const json = JSON.stringify({
    format: 'layers-model',
    modelTopology: model.modelTopology,
    weightsManifest: [{ paths: [weightsName], weights: model.weightsManifest[0]!.weights }],
  });
  // NSFWJS appends "model.json" to a URL that does not end with it.
  return { jsonName: `nsfw-mobilenet-v2-${shortHash(json)}.model.json`, json, weightsName, weights };
}

export function nsfwModel(): Plugin {
  let files: Files | null = null;
  const get = () => (files ??= readModel());
  let base = '/';
  let assetsDir = 'assets';
  let serve = false;
  return {
    name: 'stranger-nsfw-model',
    configResolved(c) {
      base = c.base;
      assetsDir = c.build.assetsDir;
      serve = c.command === 'serve';
    },
    resolveId(source) {
      return source === id ? resolvedId : null;
    },
    load(source) {
      if (source !== resolvedId) return null;
      const url = serve ? devPrefix + get().jsonName : `${base}${assetsDir}/${get().jsonName}`;
      return `export default ${JSON.stringify(url)};`;
    },
    generateBundle() {
      // Only a bundle that imported the model carries it (not the worker's own build).
      if (!Array.from(this.getModuleIds()).includes(resolvedId)) return;
      const f = get();
      this.emitFile({ type: 'asset', fileName: `${assetsDir}/${f.weightsName}`, source: f.weights });
      this.emitFile({ type: 'asset', fileName: `${assetsDir}/${f.jsonName}`, source: f.json });
    },
    configureServer(server) {
      server.middlewares.use(devPrefix, (req, res, next) => {
        const f = get();
        const name = resolve('/', req.url ?? '').slice(1);
        if (name === f.jsonName) {
          res.setHeader('Content-Type', 'application/json');
          res.end(f.json);
        } else if (name === f.weightsName) {
          res.setHeader('Content-Type', 'application/octet-stream');
          res.end(f.weights);
        } else {
          next();
        }
      });
    },
  };
}
