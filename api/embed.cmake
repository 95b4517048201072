# cmake -DIN=file -DOUT=file.c [-DNAME=sym] -P embed.cmake: writes IN's bytes as `sym`
# (default sl__openapi_json) and its length as `sym_len`.
if(NOT NAME)
  set(NAME sl__openapi_json)
endif()
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "/* generated from ${IN} by api/embed.cmake */\n#include <stddef.h>\n"
  "const char ${NAME}[] = {${body}0};\nconst size_t ${NAME}_len = ${len};\n")
