// The config area's public surface: load a YAML file into a validated ChorusConfig.
export { loadConfig, parseConfig, ConfigError } from './load.ts';
export { defaultConfig, dataPaths } from './defaults.ts';
export { validateConfig, formatPath, type ConfigProblem, type ValidateOptions } from './validate.ts';
export { checkDomain, checkBareJid, type NameCheck } from './names.ts';
export * from './types.ts';
