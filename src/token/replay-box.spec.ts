import { open, seal } from './replay-box';

describe('replay box', () => {
  it('opens only with the token it was sealed under', () => {
    const box = seal('token-a', '{"x":1}');
    expect(open('token-a', box)).toBe('{"x":1}');
    expect(open('token-b', box)).toBeUndefined();
    expect(open('token-a', `${box.slice(0, -2)}AA`)).toBeUndefined();
  });
});
