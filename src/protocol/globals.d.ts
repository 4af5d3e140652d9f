// Web-platform globals the protocol uses, present in every browser and in Node >= 17. Declared
// here because src/protocol is compiled without DOM or Node typings.
declare function structuredClone<T>(value: T): T;
