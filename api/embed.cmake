# cmake -DIN=file -DOUT=file.c -P embed.cmake: writes IN's bytes as `sl__openapi_json`.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "/* generated from docs/openapi.json by api/embed.cmake */\n#include <stddef.h>\n"
  "const char sl__openapi_json[] = {${body}0};\nconst size_t sl__openapi_json_len = ${len};\n")
