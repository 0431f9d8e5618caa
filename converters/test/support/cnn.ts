/** The ~1.15 M-parameter CNN classifier lives in converters (the CLI's benchmarks use it too). */
export { buildCnnClassifier, CNN_CLASSES, CNN_SIZE, cnnSamples } from '../../src/onnx/cnn.ts';
