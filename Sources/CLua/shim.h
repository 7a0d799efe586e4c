#ifndef STOCKADE_CLUA_SHIM_H
#define STOCKADE_CLUA_SHIM_H
// Lua 5.1, the version Redis embeds for scripting: the simulator runs the node's Redis scripts in
// it, over a simulated keyspace. Only tests and the simulator link it; the node does not.
#include <lua5.1/lua.h>
#include <lua5.1/lauxlib.h>
#include <lua5.1/lualib.h>

// A host function: reads its arguments from the stack and pushes its results. Returns how many
// results it pushed, or -1 after pushing an error message, which the trampoline raises: the
// raise (a longjmp) then crosses only C and Lua frames, never Swift ones. (Lua's own errors inside
// the host, out of memory on a push, would cross Swift frames; the simulator's scripts are small.)
typedef int (*stockade_lua_host)(lua_State *L, void *context, int variant);

static int stockade_lua_trampoline(lua_State *L) {
    stockade_lua_host host = (stockade_lua_host)lua_touserdata(L, lua_upvalueindex(1));
    void *context = lua_touserdata(L, lua_upvalueindex(2));
    int variant = (int)lua_tointeger(L, lua_upvalueindex(3));
    int results = host(L, context, variant);
    if (results < 0) return lua_error(L);
    return results;
}

// Sets table[name] for the table on top of the stack to a closure calling `host` with
// `context` and `variant`.
static inline void stockade_lua_set_host(lua_State *L, const char *name, stockade_lua_host host, void *context, int variant) {
    lua_pushlightuserdata(L, (void *)host);
    lua_pushlightuserdata(L, context);
    lua_pushinteger(L, variant);
    lua_pushcclosure(L, stockade_lua_trampoline, 3);
    lua_setfield(L, -2, name);
}

static inline void stockade_lua_setglobal(lua_State *L, const char *name) { lua_setfield(L, LUA_GLOBALSINDEX, name); }
// Sets a global past the protection's __newindex (the value is on top of the stack).
static inline void stockade_lua_rawsetglobal(lua_State *L, const char *name) {
    lua_pushstring(L, name);
    lua_insert(L, -2);
    lua_rawset(L, LUA_GLOBALSINDEX);
}
// The libraries Redis opens for scripts; not io, os or package.
static inline void stockade_lua_open_redis_libraries(lua_State *L) {
    const luaL_Reg libraries[] = {
        {"", luaopen_base}, {LUA_TABLIBNAME, luaopen_table}, {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
    };
    for (unsigned i = 0; i < sizeof(libraries) / sizeof(libraries[0]); i++) {
        lua_pushcfunction(L, libraries[i].func);
        lua_pushstring(L, libraries[i].name);
        lua_call(L, 1, 0);
    }
}
static inline void stockade_lua_getglobal(lua_State *L, const char *name) { lua_getfield(L, LUA_GLOBALSINDEX, name); }
static inline void stockade_lua_pop(lua_State *L, int n) { lua_settop(L, -(n)-1); }
static inline int stockade_lua_registry(void) { return LUA_REGISTRYINDEX; }
#endif
