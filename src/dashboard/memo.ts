// memo() for function components without pulling in preact/compat: the wrapped component renders
// again only when a prop changed by identity (shallow compare), as React.memo does.
import { createElement, type Component, type FunctionComponent } from 'preact';

function propsChanged(this: Component, next: Record<string, unknown>): boolean {
  const prev = this.props as Record<string, unknown>;
  for (const key in prev) if (key !== '__source' && !(key in next)) return true;
  for (const key in next) if (key !== '__source' && next[key] !== prev[key]) return true;
  return false;
}

export function memo<P extends object>(component: FunctionComponent<P>): FunctionComponent<P> {
  function Memo(this: Component<P>, props: P) {
    this.shouldComponentUpdate = propsChanged as Component<P>['shouldComponentUpdate'];
    return createElement(component, props);
  }
  Memo.displayName = `Memo(${component.displayName ?? component.name})`;
  return Memo as FunctionComponent<P>;
}
