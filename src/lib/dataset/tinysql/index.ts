export * from './generator';
export * as vocabulary from './vocabulary';
