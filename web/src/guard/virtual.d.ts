declare module 'virtual:nsfw-model' {
  /** The URL of the MobileNetV2 model.json (plugins/nsfw-model.ts). */
  const modelUrl: string;
  export default modelUrl;
}
