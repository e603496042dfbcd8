export function registerCustomKernels(): void {}
