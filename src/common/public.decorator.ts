import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'auth:public';

/**
 * Declares a route open to anyone. Guards are chosen per controller, so nothing enforces this at run time;
 * the guard-map test requires every route to carry either an authentication guard or this mark.
 */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);
